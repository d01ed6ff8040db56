package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/braidgw/braid/observability"
)

// Options configures Start. The zero value starts all five services on
// ephemeral loopback ports over a MemoryStore.
type Options struct {
	Store  Store             // nil means NewMemoryStore()
	Addrs  map[string]string // service name -> listen address; missing names get "127.0.0.1:0"
	Faults map[string]Faults // initial faults per service; missing names get none
	Logger *slog.Logger      // nil means discard
	// Telemetry traces every request of every service (see
	// ServiceOptions.Telemetry); nil traces nothing. Start does not shut it
	// down: its owner does, after Shutdown, so that the last spans are
	// flushed.
	Telemetry *observability.Telemetry
}

// Cluster is the five demo services, each served on its own listener by
// goroutines the Cluster owns until Shutdown.
type Cluster struct {
	services map[string]*Service
	urls     map[string]string
	servers  []*http.Server
	logger   *slog.Logger
	cancel   context.CancelFunc // cancels the base context of every request
	serving  sync.WaitGroup     // one per Serve goroutine

	mu       sync.Mutex     // guards closed and Add on handlers
	closed   bool           // set once Shutdown has stopped the servers
	handlers sync.WaitGroup // one per running request handler

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start listens on the address of every service in ServiceNames (loopback,
// ephemeral ports by default) and serves them in goroutines until Shutdown.
// ctx bounds start-up only. Unknown service names in opts are an error.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	for name := range opts.Addrs {
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("%w in Options.Addrs", err)
		}
	}
	for name := range opts.Faults {
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("%w in Options.Faults", err)
		}
	}
	store := opts.Store
	if store == nil {
		store = NewMemoryStore()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{services: map[string]*Service{}, urls: map[string]string{}, logger: logger}
	for _, name := range ServiceNames {
		svc, err := NewService(name, store, ServiceOptions{Faults: opts.Faults[name], Logger: logger, Telemetry: opts.Telemetry})
		if err != nil {
			return nil, err
		}
		c.services[name] = svc
	}
	listeners, err := c.listen(ctx, opts.Addrs)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	for i, name := range ServiceNames {
		c.serve(base, c.services[name], listeners[i])
	}
	return c, nil
}

// listen opens one listener per service, in the order of ServiceNames,
// closing those already open if one fails.
func (c *Cluster) listen(ctx context.Context, addrs map[string]string) ([]net.Listener, error) {
	var lc net.ListenConfig
	listeners := make([]net.Listener, 0, len(ServiceNames))
	for _, name := range ServiceNames {
		addr := addrs[name]
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			closeAll(listeners)
			return nil, fmt.Errorf("demo: listen for %s on %s: %w", name, addr, err)
		}
		listeners = append(listeners, ln)
		c.urls[name] = urlOf(ln.Addr())
	}
	return listeners, nil
}

// serve starts serving svc on ln in a goroutine tracked by c.serving.
func (c *Cluster) serve(base context.Context, svc *Service, ln net.Listener) {
	srv := &http.Server{
		Handler:           c.track(svc),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(c.logger.Handler(), slog.LevelWarn),
	}
	c.servers = append(c.servers, srv)
	c.logger.Info("demo service listening", "service", svc.Name(), "url", c.urls[svc.Name()])
	c.serving.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			c.logger.Error("demo service stopped", "service", svc.Name(), "err", err)
		}
	})
}

// track counts running handlers so that Shutdown can wait for them even
// after it has had to close connections forcibly.
func (c *Cluster) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			writeError(w, http.StatusServiceUnavailable, "shutting down")
			return
		}
		c.handlers.Add(1)
		c.mu.Unlock()
		defer c.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// URL returns the base URL of the named service, e.g. "http://127.0.0.1:9103",
// or "" for an unknown name.
func (c *Cluster) URL(name string) string { return c.urls[name] }

// Service returns the named service, or nil for an unknown name.
func (c *Cluster) Service(name string) *Service { return c.services[name] }

// Shutdown stops all services gracefully: it stops accepting, lets running
// requests finish until ctx is done, then cancels the ones left (ending
// injected latency) and closes their connections. When it returns, every
// goroutine the Cluster started has ended. It returns ctx's error if it had
// to force; later calls return the first call's result.
func (c *Cluster) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		errs := make([]error, len(c.servers))
		var wg sync.WaitGroup
		for i, srv := range c.servers {
			wg.Go(func() { errs[i] = srv.Shutdown(ctx) })
		}
		wg.Wait()
		c.cancel()
		if err := errors.Join(errs...); err != nil {
			c.shutdownErr = fmt.Errorf("demo: shutdown: %w", err)
			for _, srv := range c.servers {
				_ = srv.Close() // its error repeats the listener's, already reported
			}
		}
		c.serving.Wait()
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.handlers.Wait()
	})
	return c.shutdownErr
}

// urlOf returns the http URL of a listener address, naming the loopback
// address when listening on all interfaces.
func urlOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("http://127.0.0.1:%d", ta.Port)
	}
	return "http://" + a.String()
}

func closeAll(listeners []net.Listener) {
	for _, ln := range listeners {
		_ = ln.Close() // nothing was served on it
	}
}
