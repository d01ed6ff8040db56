package cache

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const adminToken = "s3cret"

// manyNames is a body with one name too many.
var manyNames = `{"keys": [` + strings.Repeat(`"k",`, 1000) + `"k"]}`

// adminTests are requests to the admin handler of a Cache, with token
// s3cret unless said otherwise, and what they must get.
var adminTests = []struct {
	name       string
	token      string // the handler's
	method     string
	path       string
	auth       string
	body       string
	wantStatus int
	wantCode   string
	wantInBody string
}{
	{"api off", "", "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":["t"]}`, 404, "not_found", "off"},
	{"no auth", adminToken, "POST", "/cache/invalidate", "", `{"tags":["t"]}`, 401, "unauthorized", "Bearer"},
	{"wrong token", adminToken, "POST", "/cache/invalidate", "Bearer s3cre", `{"tags":["t"]}`, 401, "unauthorized", ""},
	{"wrong scheme", adminToken, "POST", "/cache/invalidate", "Basic s3cret", `{"tags":["t"]}`, 401, "unauthorized", ""},
	{"other path", adminToken, "POST", "/cache/flush", "Bearer s3cret", `{}`, 404, "not_found", "/cache/flush"},
	{"GET", adminToken, "GET", "/cache/invalidate", "Bearer s3cret", "", 405, "method_not_allowed", "POST"},
	{"empty body", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", "", 400, "invalid_body", "empty"},
	{"not JSON", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":`, 400, "invalid_body", "not valid JSON"},
	{"not an object", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `["t"]`, 400, "invalid_body", "JSON object"},
	{"unknown field", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tagz":["t"]}`, 400, "invalid_body", "tagz"},
	{"wrong type", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":"t"}`, 400, "invalid_body", "tags: must be a list"},
	{"nothing", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":[]}`, 400, "invalid_body", "nothing to invalidate"},
	{"empty name", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":["a",""]}`, 400, "invalid_body", "tags[1]"},
	{"two values", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"tags":["a"]} {}`, 400, "invalid_body", "one JSON object"},
	{"too many", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", manyNames, 400, "invalid_body", "too many names: 1001"},
	{"too large", adminToken, "POST", "/cache/invalidate", "Bearer s3cret", `{"keys":["` + strings.Repeat("x", 1<<20) + `"]}`,
		413, "body_too_large", "over"},
	{"ok", adminToken, "POST", "/cache/invalidate", "bearer s3cret", `{"namespaces":["products"],"tags":["product:1","product:1"],"keys":["k"]}`,
		200, "", `{"invalidated":{"namespaces":["products"],"tags":["product:1"],"keys":["k"],"versions":{"ns:products":1,"tag:product:1":1}}}`},
}

func TestAdminHandler(t *testing.T) {
	cfg, _ := sharedSetup(t)
	c := newCache(t, cfg, Options{})
	for _, tt := range adminTests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			c.AdminHandler(tt.token).ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer", w.Header().Get("WWW-Authenticate"))
			}
			if !strings.Contains(w.Body.String(), tt.wantInBody) {
				t.Errorf("body %s does not contain %s", w.Body, tt.wantInBody)
			}
			if tt.wantCode == "" {
				return
			}
			var e adminError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message == "" {
				t.Errorf("error body = %+v, want status %d, error %q and a message", e, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

// TestAdminInvalidates: a 200 from the handler has invalidated the cache.
func TestAdminInvalidates(t *testing.T) {
	c := newCache(t, Config{}, Options{})
	e := Entry{Key: "k", Tags: []string{"t"}}
	p := Policy{TTL: time.Minute}
	var src source
	wantGet(t, c, e, p, src.fetch, `"v1"`, Miss)
	r := httptest.NewRequest("POST", "/cache/invalidate", strings.NewReader(`{"tags":["t"]}`))
	r.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	c.AdminHandler("tok").ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	wantGet(t, c, e, p, src.fetch, `"v2"`, Miss)
}

// TestAdminRedisDown: an invalidation that cannot reach Redis is a 503 and
// changes nothing.
func TestAdminRedisDown(t *testing.T) {
	srv := startRedis(t, 0)
	c := newCache(t, Config{Redis: RedisConfig{URL: srv.url(), Prefix: testPrefix(t)}}, Options{})
	srv.kill()
	r := httptest.NewRequest("POST", "/cache/invalidate", strings.NewReader(`{"tags":["t"]}`))
	r.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	c.AdminHandler("tok").ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "cache_unavailable") {
		t.Fatalf("status %d: %s; want 503 cache_unavailable", w.Code, w.Body)
	}
	if v := c.vers.get(c.tagKey("t")); v != 0 {
		t.Errorf("local version of t = %d after a failed invalidation, want 0", v)
	}
}
