package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/routes"
	"github.com/braidgw/braid/upstream"
)

// compileRoutes is routes.New, made safe for any configuration: chi panics
// on some patterns ("/api/{id", "/a/*/b", "{id:[}"), and a panic must never
// escape start-up or "gateway validate". A pattern that chi refuses and
// that routes did not already report is an error naming the route's path
// field; any other panic is an error too.
func compileRoutes(cfg routes.Config, opts routes.Options) (h http.Handler, err error) {
	defer func() {
		if v := recover(); v != nil {
			h = nil
			err = errors.Join(patternErrors(cfg.Routes, nil)...)
			if err == nil {
				err = &aggregate.ConfigError{Field: "routes", Msg: fmt.Sprintf("could not be compiled: %v", v)}
			}
		}
	}()
	h, err = routes.New(cfg, opts)
	if err != nil {
		// routes.New stops before mounting when a route is wrong: chi
		// has not seen the other patterns yet.
		err = errors.Join(append(flatten(err), patternErrors(cfg.Routes, err)...)...)
	}
	return h, err
}

// patternErrors mounts the routes' patterns, one after another, on a
// scratch chi router and reports each that makes chi panic, skipping the
// routes whose path field reported already names.
func patternErrors(rcs []routes.RouteConfig, reported error) []error {
	var errs []error
	var accepted []routes.RouteConfig
	for i, rc := range rcs {
		field := routeField(i, rc) + ".path"
		if rc.Path == "" || rc.Path[0] != '/' || namesField(reported, field) {
			continue
		}
		// A fresh router each time: a panic may leave chi's tree half
		// changed.
		if msg := mountPanics(append(accepted, rc)); msg != "" {
			errs = append(errs, &aggregate.ConfigError{Field: field, Msg: "the router refuses the pattern: " + strings.TrimPrefix(msg, "chi: ")})
			continue
		}
		accepted = append(accepted, rc)
	}
	return errs
}

// mountPanics mounts rcs on a new chi router and returns what chi panicked
// with, "" if it did not.
func mountPanics(rcs []routes.RouteConfig) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	r := chi.NewRouter()
	for _, rc := range rcs {
		method := strings.ToUpper(rc.Method)
		if method != http.MethodHead {
			method = http.MethodGet
		}
		r.Method(method, rc.Path, http.NotFoundHandler())
	}
	return ""
}

// namesField reports whether err holds an *aggregate.ConfigError for field.
func namesField(err error, field string) bool {
	for _, e := range flatten(err) {
		var ce *aggregate.ConfigError
		if errors.As(e, &ce) && ce.Field == field {
			return true
		}
	}
	return false
}

// routeField names a route as the routes package does: "routes[0] (/api/users/{id})".
func routeField(i int, rc routes.RouteConfig) string {
	f := fmt.Sprintf("routes[%d]", i)
	if rc.Path != "" {
		f += " (" + rc.Path + ")"
	}
	return f
}

// errNotServing is what a stand-in upstream answers; routes compiled
// against stand-ins are checked, never served.
var errNotServing = errors.New("upstream stand-in: the configuration is being checked, not served")

// stubStack is a Factory knowing the upstreams by name only, for checking
// the routes without building any client: every declared upstream, valid
// or not, so that a route naming one whose settings are wrong is not also
// reported as naming an unknown upstream.
func stubStack(names []string) upstream.Factory {
	stub := func(context.Context, *upstream.Request) (*upstream.Response, error) { return nil, errNotServing }
	m := make(map[string]upstream.Fetch, len(names))
	for _, name := range names {
		m[name] = stub
	}
	return upstream.Static(m)
}
