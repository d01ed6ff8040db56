package main

import (
	"strings"
	"testing"
)

// TestYAMLErrorsNameFieldAndLine: every decoding mistake names the full
// path of its field and its own line, syntax errors included.
func TestYAMLErrorsNameFieldAndLine(t *testing.T) {
	const upstreams = "upstreams:\n  users:\n    url: http://127.0.0.1:9101\n"
	tests := []struct {
		name string
		src  string
		want string // the whole error
	}{
		// Syntax: yaml.v3 names the line where the enclosing block began
		// (here line 1), or no line at all for a problem on the first.
		{"bad indentation deep in a list", "routes:\n  - path: /x\n    calls:\n      - name: a\n     upstream: b\n",
			"line 5: not valid YAML: did not find expected key"},
		{"list item at a mapping's level", "server:\n  listen: :1\nupstreams:\n  - users\n  url: x\n",
			"line 5: not valid YAML: did not find expected '-' indicator"},
		{"problem on the first line", "key: value: x\nserver: {}\n", "line 1: not valid YAML: mapping values are not allowed in this context"},
		{"tab indentation", "server:\n  listen: :1\n\tadmin_listen: :2\n", "line 3: not valid YAML: found a tab character that violates indentation"},
		{"unclosed quote", "server:\n  listen: ':1\n  admin_listen: :2\n", "line 2: not valid YAML: found unexpected end of stream"},
		{"unknown anchor", "server:\n  listen: :1\n  admin_listen: *nope\n", "line 3: not valid YAML: unknown anchor 'nope' referenced"},
		{"two documents", "server: {}\n---\nserver: {}\n", "line 2: a second YAML document (after ---): the configuration is one document"},
		{"not a mapping", "- a\n- b\n", "line 1: a list is not a mapping (key: value)"},

		// Types: the field itself, not its parent, even in flow style.
		{"duration in a flow mapping", upstreams + "routes:\n  - path: /y\n    calls:\n      - {name: a, upstream: users, path: /a, timeout: [1]}\n      - {name: b, upstream: users, path: /b, timeout: fast}\n",
			"routes[0].calls[0].timeout: a list is not a duration (write e.g. 2s or 500ms) (line 7)\n" +
				"routes[0].calls[1].timeout: \"fast\" is not a duration (write e.g. 2s or 500ms) (line 8)"},
		{"number as a duration", "server: {write_timeout: 30}\n", `server.write_timeout: "30" is not a duration (write e.g. 2s or 500ms) (line 1)`},
		{"nested ints and floats", "upstreams:\n  users:\n    url: http://x\n    retry: {attempts: many, statuses: [500, x]}\n    breaker: {failure_rate: high, min_calls: [1]}\n",
			"upstreams.users.retry.attempts: \"many\" is not a whole number (line 4)\n" +
				"upstreams.users.retry.statuses[1]: \"x\" is not a whole number (line 4)\n" +
				"upstreams.users.breaker.failure_rate: \"high\" is not a number (line 5)\n" +
				"upstreams.users.breaker.min_calls: a list is not a whole number (line 5)"},
		{"out of range", "server:\n  max_header_bytes: 9223372036854775808\n", `server.max_header_bytes: "9223372036854775808" is out of range (line 2)`},
		{"too large for an int", "server:\n  max_header_bytes: 1e30\n", `server.max_header_bytes: "1e30" is not a whole number (line 2)`},
		{"bool", "cache:\n  disabled: maybe\n", `cache.disabled: "maybe" is not true or false (line 2)`},
		{"byte size", "cache:\n  l1:\n    max_bytes: lots\n", "cache.l1.max_bytes: `lots` is not a byte size (write e.g. 67108864, 64MiB, 512KiB or 100MB) (line 3)"},
		{"byte size as a list", "server:\n  max_inflight_response_bytes: [1]\n", "server.max_inflight_response_bytes: a byte size must be a number or a string such as 64MiB (line 2)"},
		{"pointer to int", upstreams + "routes:\n  - path: /x\n    params:\n      - name: id\n        min: one\n", `routes[0].params[0].min: "one" is not a whole number (line 8)`},
		{"list expected", upstreams + "routes:\n  - path: /x\n    calls: 3\n", `routes[0].calls: "3" is not a list (line 6)`},
		{"mapping expected", "server: [1]\n", "server: a list is not a mapping (key: value) (line 1)"},
		{"string expected", "admin:\n  token: {a: 1}\n", "admin.token: a mapping is not a string (line 2)"},
		{"map of strings", upstreams + "routes:\n  - path: /x\n    calls:\n      - name: a\n        query: {limit: [5]}\n", "routes[0].calls[0].query.limit: a list is not a string (line 8)"},

		// Unknown and repeated fields.
		{"unknown field, with a suggestion", upstreams + "routes:\n  - path: /x\n    parms: []\n", `routes[0].parms: unknown field "parms" (did you mean "params"?) (line 6)`},
		{"unknown field in an inline struct", "upstreams:\n  users:\n    breaker: {failure_ratio: 0.3}\n", `upstreams.users.breaker.failure_ratio: unknown field "failure_ratio" (did you mean "failure_rate"?) (line 3)`},
		{"unknown top-level field", "sever:\n  listen: :1\n", `sever: unknown field "sever" (did you mean "server"?) (line 1)`},
		{"unknown field in a pointer struct", upstreams + "routes:\n  - path: /x\n    calls:\n      - name: a\n        batch: {keys: 'a[].id', chunk: 5}\n", `routes[0].calls[0].batch.chunk: unknown field "chunk" (line 8)`},
		{"set twice", "server:\n  listen: :1\n  listen: :2\n", "server.listen: is set twice, first on line 2 (line 3)"},
		{"odd upstream name", "upstreams:\n  \"a.b\":\n    retry: {attempts: x}\n", `upstreams["a.b"].retry.attempts: "x" is not a whole number (line 3)`},
		{"merge key", "upstreams:\n  users: &u\n    url: http://x\n  orders:\n    <<: *u\n    retyr: {}\n", `upstreams.orders.retyr: unknown field "retyr" (did you mean "retry"?) (line 6)`},
		{"through an alias", "upstreams:\n  users: &u {url: http://x, max_conns: many}\n  orders: *u\n",
			`upstreams.users.max_conns: "many" is not a whole number (line 2)`}, // once, where it is written
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg fileConfig
			err := decodeYAML([]byte(tt.src), &cfg)
			if err == nil {
				t.Fatalf("decodeYAML succeeded, want\n%s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// TestYAMLAliasesCheckedOnce: a mistake in an anchored value that aliases
// (*name) repeat hundreds of thousands of times is reported once, where it
// is written, and the check stays quick.
func TestYAMLAliasesCheckedOnce(t *testing.T) {
	var b strings.Builder
	b.WriteString("upstreams:\n  users: {url: http://x}\nroutes:\n")
	b.WriteString("  - &r {path: /a, calls: [&c {name: a, upstream: users, path: /a, query: {a: x, b: [1]}}]}\n")
	b.WriteString("  - {path: /b, calls: [" + strings.Repeat("*c, ", 400) + "*c]}\n")
	for range 300 {
		b.WriteString("  - *r\n")
	}
	var cfg fileConfig
	err := decodeYAML([]byte(b.String()), &cfg)
	if want := "routes[0].calls[0].query.b: a list is not a string (line 4)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
