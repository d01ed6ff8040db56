// Package demo implements the five demo downstream services that Braid
// composes: users, orders, products, notifications and recommendations.
//
// The services exist so that newcomers, docker-compose and the end-to-end
// tests have realistic upstreams to aggregate. Each is a small HTTP JSON API
// over a [Store]: the in-memory [MemoryStore] by default, or a
// [PostgresStore] on a pgx pool when a DSN is given. Both serve the same
// deterministic data, generated from a fixed seed, so a request returns the
// same bytes on every run and from either store.
//
// Every service can be slowed down, made to fail a fraction of its requests
// (with 500 or another error status), taken down (503 to every request),
// made to reset every connection without answering, or made hostile:
// answering with a body cut short ("truncate"), reset mid-body
// ("reset_mid_body"), larger than the gateway accepts ("huge"), endless
// ("endless"), one byte every 100ms ("drip") or not JSON ("garbage"); see
// [Hostile]. Faults are set from flags of cmd/demo (latency, error rate and
// down only), from the Go API ([Service.SetFaults]) or at run time through
// the admin endpoints on its own port, which faults never affect:
//
//	GET  /_demo/faults   current faults, e.g.
//	                     {"latency":"50ms","error_rate":0.2,"error_status":500,"down":false,
//	                      "reset":false,"hostile":"","huge_bytes":9437184}
//	PUT  /_demo/faults   update any subset of those fields, e.g. {"reset":true}
//	                     or {"hostile":"drip"}; {"hostile":""} ends it
//	GET  /_demo/stats    requests served, total and per route pattern
//	POST /_demo/reset    zero the counters and clear the faults
//
// See [Faults] for what each field does.
//
// # Metrics
//
// Each service serves GET /metrics (Prometheus text format) on its own
// port, from a registry of its own, so that services and clusters share a
// process without sharing a series. Every series has the label service;
// faults and tracing never touch a scrape:
//
//	braid_demo_requests_total             counter   http_route, http_request_method, http_response_status_code
//	braid_demo_request_duration_seconds   histogram the same labels; injected latency included
//	braid_demo_fault_active               gauge     mode: latency, error, down, reset or a hostile mode; 1 on
//	braid_demo_fault_latency_seconds      gauge     the injected latency
//	braid_demo_fault_error_rate           gauge     the injected error rate
//
// The route is the path of the pattern that matched ("/users/{id}"; ""
// for none), so the series stay few whatever the paths asked for; the
// status of a request answered by resetting its connection is 0. Requests
// to the admin endpoints are not observed, and POST /_demo/reset does not
// reset the metrics.
//
// # Tracing
//
// Given an [observability.Telemetry] (Options.Telemetry,
// ServiceOptions.Telemetry) every request gets a server span named after
// its route ("GET /users/{id}"), continuing the caller's W3C traceparent,
// with the injected fault, if any, as attributes; given one to
// [OpenPostgres], every query made for a traced request gets a child span
// ("SELECT", with db.system.name, db.operation.name and db.query.text).
// Without one nothing is traced and nothing is added to a request. cmd/demo
// builds one from the OTEL_* environment variables.
//
// # Seed data
//
// The seed holds 300 users (ids 1..300), 400 products (ids 1..400), 0–12
// orders per user with 1–6 line items each, 2–8 notifications per user and
// up to 30 recommendations per user. Two users are fixtures that other
// packages rely on:
//
//   - User 1 ([RichUserID]) is a gold-tier user with at least 5 orders,
//     unread notifications and at least 12 recommendations; the README shows it.
//   - User 7 ([BatchUserID]) has exactly 20 orders ([BatchUserOrders]) whose
//     line items reference exactly 50 distinct products
//     ([BatchUserProducts]); the e2e tests use it to exercise batch joins.
//
// # Use
//
// Start all five services on ephemeral loopback ports, call them, stop them:
//
//	c, err := demo.Start(ctx, demo.Options{})
//	if err != nil {
//		return err
//	}
//	defer c.Shutdown(ctx)
//	resp, err := client.Get(c.URL("products") + "/products?ids=1,2,3")
//
// A single service is also a plain [http.Handler] (see [NewService]) for use
// with net/http/httptest.
package demo
