package aggregate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/upstream"
)

// Env is what a plan is compiled against.
type Env struct {
	// Field prefixes every error's field name, e.g. "routes[0]".
	Field string
	// Route names the route, its method and pattern: "GET /users/{id}".
	// It is handed to Stack as part of each call's identity.
	Route string
	// Params are the names of the route's parameters.
	Params []string
	// Auth says the route verifies a token: templates may then read its
	// claims as {auth.sub} or {auth.claims.tenant} (see Plan.AuthRefs),
	// whose values the caller passes to Execute among the parameters,
	// under those names.
	Auth bool
	// Forward lists the client request headers the route's calls forward
	// (upstream.Call.Forward).
	Forward []string
	// Stack builds each call's Fetch, once, at compile time: the per-call
	// stack of cache, retries, breaker and client. upstream.Static wraps a
	// plain map of Fetch by upstream name. Required.
	Stack upstream.Factory
	// Observer is told of every call's start and end (spans, metrics); nil
	// observes nothing.
	Observer Observer
	// Workers runs the calls that run beside others on kept goroutines;
	// nil starts a goroutine per such call.
	Workers *Workers
	// Cache caches the answers of the calls that declare a cache section:
	// a batch call per key, here; any other in its stack (see
	// upstream.Call.Cache). Nil caches nothing.
	Cache *cache.Cache
}

// Observer watches each call of a plan: StartCall is called once the
// call's dependencies are ready, returns the context the call runs in
// (carrying its span) and the function called once when it ends.
// *observability.Telemetry is one.
type Observer interface {
	StartCall(ctx context.Context, route, call, upstream string) (context.Context, func(observability.CallEnd))
}

// ConfigError is a configuration mistake, naming the field that holds it.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// Plan is the compiled, immutable form of a route's calls: a dependency
// graph in which a call waits only for the calls it references. A Plan is
// safe for concurrent use by many requests.
type Plan struct {
	route    string
	observer Observer
	cache    *cache.Cache
	calls    []*call
	byName   map[string]int
	stitchs  map[int][]int // target call -> batch calls stitching into it, in declared order
	authRefs []string      // the {auth.*} references, "auth.sub", in first-use order
	workers  *Workers      // nil: a goroutine per call run beside others
	roots    []int         // the calls that reference none, in declared order
	cancels  bool          // a required call's failure has other calls to cancel
}

// AuthRefs lists the token claims the plan's templates read, as
// "auth.sub" or "auth.claims.tenant": Execute needs each among its
// parameters, under that name.
func (p *Plan) AuthRefs() []string { return p.authRefs }

type call struct {
	CallConfig
	idx   int
	key   []byte // `"name":`, precomputed for assembly
	fetch upstream.Fetch
	path  *template
	query []queryTemplate // sorted by name
	// staticQuery is the query when none of its templates references
	// anything: built once and shared, read-only, by every request of the
	// call (upstream.Request.Query is never written to). Nil otherwise.
	staticQuery url.Values
	// staticEncoded is staticQuery encoded, once (upstream.Request's
	// EncodedQuery).
	staticEncoded string
	deps          []int // the calls it references, ascending
	dependents    []int // the calls that reference it, ascending
	batch         *batch
	cache         *callCache // nil: not cached
	output        bool
}

type queryTemplate struct {
	name string
	tmpl *template
}

// Compile checks calls against env and builds their plan. Every mistake is
// reported, joined, each as a *ConfigError naming its field.
func Compile(calls []CallConfig, env Env) (*Plan, error) {
	c := &compiler{env: env, plan: &Plan{route: env.Route, observer: env.Observer, cache: env.Cache, workers: env.Workers, byName: map[string]int{}, stitchs: map[int][]int{}}}
	if len(calls) == 0 {
		c.errf(env.Field+".calls", "at least one call is required")
	}
	for i := range calls {
		c.declare(i, calls[i])
	}
	for _, cl := range c.plan.calls {
		c.compileCall(cl)
	}
	if len(c.errs) == 0 {
		c.checkCycles()
		c.checkOutputs()
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	c.plan.link()
	return c.plan, nil
}

// link records what Execute schedules by: each call's dependents, the
// calls that reference none, and whether a failure has anything to cancel.
func (p *Plan) link() {
	required := false
	for _, cl := range p.calls {
		if len(cl.deps) == 0 {
			p.roots = append(p.roots, cl.idx)
		}
		for _, d := range cl.deps {
			p.calls[d].dependents = append(p.calls[d].dependents, cl.idx)
		}
		required = required || !cl.Optional
	}
	p.cancels = len(p.calls) > 1 && required
}

type compiler struct {
	env  Env
	plan *Plan
	errs []error
}

func (c *compiler) errf(field, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) field(cl *call, name string) string {
	f := fmt.Sprintf("%s.calls[%d]", c.env.Field, cl.idx)
	if cl.Name != "" {
		f += " (" + cl.Name + ")"
	}
	if name != "" {
		f += "." + name
	}
	return f
}

func (c *compiler) declare(i int, cfg CallConfig) {
	cl := &call{CallConfig: cfg, idx: i, output: cfg.Batch == nil && !cfg.Hidden}
	c.plan.calls = append(c.plan.calls, cl)
	switch _, dup := c.plan.byName[cfg.Name]; {
	case cfg.Name == "":
		c.errf(c.field(cl, "name"), "is required")
	case !validName(cfg.Name):
		c.errf(c.field(cl, "name"), "%q: use letters, digits, _ or -", cfg.Name)
	case dup:
		c.errf(c.field(cl, "name"), "%q is declared twice", cfg.Name)
	case cfg.Name == authRef:
		c.errf(c.field(cl, "name"), "%q is reserved: {auth.*} reads the verified token", cfg.Name)
	default:
		c.plan.byName[cfg.Name] = i
	}
}

func (c *compiler) compileCall(cl *call) {
	c.compileCache(cl)
	c.buildStack(cl)
	switch cl.Method = strings.ToUpper(cl.Method); cl.Method {
	case "":
		cl.Method = "GET"
	case "GET", "HEAD":
	default:
		c.errf(c.field(cl, "method"), "%q: only GET and HEAD are allowed", cl.Method)
	}
	if cl.Timeout < 0 {
		c.errf(c.field(cl, "timeout"), "must not be negative")
	}
	out := cl.Name
	if cl.As != "" {
		out = cl.As
	}
	cl.key = append(appendQuoted(nil, out), ':')
	c.compilePath(cl)
	c.compileQuery(cl)
	if cl.Batch != nil {
		c.compileBatch(cl)
	}
	slices.Sort(cl.deps)
	cl.deps = slices.Compact(cl.deps)
}

// buildStack asks the factory for the call's Fetch.
func (c *compiler) buildStack(cl *call) {
	if cl.Upstream == "" {
		c.errf(c.field(cl, "upstream"), "is required")
		return
	}
	if c.env.Stack == nil {
		c.errf(c.field(cl, "upstream"), "no upstreams are configured")
		return
	}
	id := upstream.Call{Route: c.env.Route, Name: cl.Name, Upstream: cl.Upstream, Batch: cl.Batch != nil, Forward: c.env.Forward}
	if cl.cache != nil {
		id.Cache = &cl.cache.policy
	}
	f, err := c.env.Stack(id)
	switch {
	case errors.Is(err, upstream.ErrUnknownUpstream):
		c.errf(c.field(cl, "upstream"), "unknown upstream %q", cl.Upstream)
	case err != nil:
		c.errf(c.field(cl, "upstream"), "%v", err)
	default:
		cl.fetch = f
	}
}

func (c *compiler) compilePath(cl *call) {
	if cl.Path == "" {
		c.errf(c.field(cl, "path"), "is required")
		return
	}
	if !strings.HasPrefix(cl.Path, "/") {
		c.errf(c.field(cl, "path"), "%q must start with /", cl.Path)
		return
	}
	if strings.ContainsAny(cl.Path, "?#") {
		c.errf(c.field(cl, "path"), "%q: put query parameters under query", cl.Path)
		return
	}
	t, err := parseTemplate(cl.Path)
	if err == nil {
		err = checkPathEscapes(t)
	}
	if err != nil {
		c.errf(c.field(cl, "path"), "%v", err)
		return
	}
	cl.path = t
	c.checkRefs(cl, "path", t)
}

// checkPathEscapes refuses a path template whose literal text holds a '%'
// not followed by two hex digits: a value rendered after it could complete
// the escape ("/files/%2{x}" with x = "e" makes "%2e", a dot segment).
func checkPathEscapes(t *template) error {
	hex := func(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }
	for _, lit := range t.lits {
		for i := 0; i < len(lit); i++ {
			if lit[i] != '%' {
				continue
			}
			if i+2 >= len(lit) || !hex(lit[i+1]) || !hex(lit[i+2]) {
				return fmt.Errorf("%q: %% must start an escape of two hex digits (write %%25 for a literal %%)", t.text)
			}
			i += 2
		}
	}
	return nil
}

func (c *compiler) compileQuery(cl *call) {
	names := make([]string, 0, len(cl.Query))
	for k := range cl.Query {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		field := c.field(cl, "query."+k)
		if k == "" {
			c.errf(field, "empty query parameter name")
			continue
		}
		t, err := parseTemplate(cl.Query[k])
		if err != nil {
			c.errf(field, "%v", err)
			continue
		}
		c.checkRefs(cl, "query."+k, t)
		cl.query = append(cl.query, queryTemplate{name: k, tmpl: t})
	}
	static := len(cl.query) > 0
	for _, qt := range cl.query {
		static = static && len(qt.tmpl.refs) == 0
	}
	if static {
		cl.staticQuery = make(url.Values, len(cl.query))
		for _, qt := range cl.query {
			cl.staticQuery.Set(qt.name, qt.tmpl.text)
		}
		cl.staticEncoded = cl.staticQuery.Encode()
	}
}

func (c *compiler) checkRefs(cl *call, name string, t *template) {
	for _, r := range t.refs {
		if r.auth() {
			if !c.env.Auth {
				c.errf(c.field(cl, name), "{%s} needs the route's auth section: no token is verified", r.param)
			} else if !slices.Contains(c.plan.authRefs, r.param) {
				c.plan.authRefs = append(c.plan.authRefs, r.param)
			}
			continue
		}
		if r.param != "" {
			if !slices.Contains(c.env.Params, r.param) {
				c.errf(c.field(cl, name), "unknown parameter {%s} (declared: %s)", r.param, strings.Join(c.env.Params, ", "))
			}
			continue
		}
		c.dependOn(cl, name, r.path.call)
	}
}

func (c *compiler) dependOn(cl *call, field, name string) int {
	idx, ok := c.plan.byName[name]
	switch {
	case !ok:
		c.errf(c.field(cl, field), "references unknown call %q", name)
		return -1
	case idx == cl.idx:
		c.errf(c.field(cl, field), "call %q references itself", name)
		return -1
	}
	cl.deps = append(cl.deps, idx)
	return idx
}

// checkCycles reports every dependency cycle, naming the calls on it.
func (c *compiler) checkCycles() {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(c.plan.calls))
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = visiting
		stack = append(stack, i)
		for _, d := range c.plan.calls[i].deps {
			switch state[d] {
			case visiting:
				start := slices.Index(stack, d)
				names := make([]string, 0, len(stack)-start+1)
				for _, j := range stack[start:] {
					names = append(names, c.plan.calls[j].Name)
				}
				names = append(names, c.plan.calls[d].Name)
				c.errf(c.env.Field+".calls", "dependency cycle: %s", strings.Join(names, " -> "))
			case unvisited:
				visit(d)
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range c.plan.calls {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

func (c *compiler) checkOutputs() {
	seen := map[string]bool{}
	for _, cl := range c.plan.calls {
		if !cl.output {
			continue
		}
		k := string(cl.key)
		if seen[k] {
			c.errf(c.field(cl, "as"), "response key %s is used twice", strings.TrimSuffix(k, ":"))
		}
		seen[k] = true
	}
}
