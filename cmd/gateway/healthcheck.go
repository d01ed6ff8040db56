package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds the whole check: a gateway that cannot answer
// /readyz within it is not ready.
const healthcheckTimeout = 2 * time.Second

// healthcheck implements "gateway healthcheck [-admin ADDR]", the container
// healthcheck (the runtime image has no curl): GET http://ADDR/readyz, exit
// 0 on 200 and 1 otherwise, saying why. ADDR is -admin, else
// $BRAID_ADMIN_LISTEN, else the default admin address; a host left
// unspecified (":9090", "0.0.0.0:9090", "[::]:9090") means 127.0.0.1. No
// configuration file is read.
func healthcheck(args []string, lookup func(string) (string, bool), stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "", "admin address (default $BRAID_ADMIN_LISTEN, else 127.0.0.1:9090)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	addr := *admin
	if addr == "" {
		addr, _ = lookup("BRAID_ADMIN_LISTEN")
	}
	if addr == "" {
		addr = serverConfig{}.withDefaults().AdminListen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: admin address %q is not host:port\n", addr)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %v\n", err)
		return 1
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gateway healthcheck: %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gateway healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	return 0
}
