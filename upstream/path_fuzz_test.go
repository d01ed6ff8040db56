package upstream

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzCheckPath: whatever checkPath accepts stays under the upstream's
// path prefix however a server resolves it. Appended to a base URL with or
// without a prefix (as the client does), the path must parse with no query or
// fragment and keep its bytes; resolved as a reference (RFC 3986 dot
// removal, net/url's ResolveReference), and percent-decoded with
// backslashes taken as slashes then path.Clean'ed, it must stay at or
// under the prefix; and once decoded it must hold no "." or ".." segment.
func FuzzCheckPath(f *testing.F) {
	for _, p := range []string{
		"/", "/users/42", "/users/a%2Fb", "/a/..b", "/a/.well-known", "/a//b", "/a;v=1",
		"/..", "/a/../../b", "/a/%2e%2e/b", "/a/.%2E/b", "/a/..%2fb", "/a/..%5cb", "/a\\..\\b",
		"/a/%252e%252e", "/%2e%2e%2f%2e%2e", "//evil.example/x", "/a?x=/../b", "/a#/../b",
		"/a/%2", "/a/%zz", "/é/..", "/a/..;/b", "/a/b%00", "/%5c%2e%2e",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		for _, prefix := range []string{"", "/api/v1"} {
			checkUnder(t, prefix, p)
		}
	})
}

// checkUnder checks the accepted path p against an upstream whose base URL
// has the path prefix prefix ("" or "/x", no trailing slash).
func checkUnder(t *testing.T, prefix, p string) {
	t.Helper()
	base, err := url.Parse("http://upstream.internal" + prefix + "/")
	if err != nil {
		t.Fatal(err)
	}
	under := func(q string) bool { return q == prefix || strings.HasPrefix(q, prefix+"/") }
	u, err := url.Parse("http://upstream.internal" + prefix + p)
	switch {
	case err != nil:
		t.Fatalf("checkPath accepted %q, which does not parse: %v", p, err)
	case u.Host != "upstream.internal" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		t.Fatalf("checkPath accepted %q: host %q, query %q, fragment %q", p, u.Host, u.RawQuery, u.Fragment)
	case u.EscapedPath() != prefix+p:
		t.Fatalf("checkPath accepted %q: the URL's path is %q", p, u.EscapedPath())
	}
	if r := base.ResolveReference(u); r.Host != "upstream.internal" || !under(r.Path) {
		t.Fatalf("checkPath accepted %q, which resolves to %q, outside %s/", p, r, prefix)
	}
	dec := strings.ReplaceAll(u.Path, `\`, "/")
	if c := path.Clean(dec); !under(c) {
		t.Fatalf("checkPath accepted %q, which decodes and cleans to %q, outside %s/", p, c, prefix)
	}
	for seg := range strings.SplitSeq(dec, "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("checkPath accepted %q, which decodes to %q, with a dot segment", p, dec)
		}
	}
}
