// Package routes mounts Braid's composite endpoints on a chi router.
//
// Each route is declared in configuration: a chi path pattern, typed
// parameters, a deadline and the calls to make (see package aggregate). A
// request is validated, executed under the route's deadline and answered
// with one JSON document; failures become JSON errors with the status that
// fits (400 bad parameter, 404 not found, 502 upstream failed or sent
// something unusable, 503 upstream refusing calls or circuit breaker open,
// with Retry-After, 504 deadline), decided in one place, classify. A GET
// route answers HEAD too; a 405 lists the path's methods in Allow. No route
// reads a request body. Every list header written is bounded in size.
//
//	set, err := upstream.NewSet(cfgs, upstream.SetOptions{})
//	h, err := routes.New(cfg, routes.Options{Stack: set.Stack, Logger: log})
//	http.ListenAndServe(":8080", h)
package routes
