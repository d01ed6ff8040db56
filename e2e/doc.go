// Package e2e holds Braid's end-to-end tests: they build the real gateway
// and demo binaries, run the demo services on PostgreSQL and the gateway on
// free loopback ports, and talk to them over HTTP only. Nothing imports it.
//
//	go test ./e2e/
package e2e
