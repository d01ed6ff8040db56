package upstream

import (
	"errors"
	"testing"
)

func TestCheckPath(t *testing.T) {
	allowed := []string{
		"/", "/users/42", "/users/a%2Fb", "/a/b%20c", "/a/..b", "/a/b..", "/a/.well-known",
		"/a//b", "/a:b@c", "/a;v=1", "/a/%25", "/a/%2e%2e%2e", "/~user/-_.!$&'()*+,=",
	}
	refused := []string{
		"", "a", "users/42", "/..", "/../admin", "/a/..", "/a/../b", "/a/./b", "/.", "/a/.",
		"/a/%2e%2e/b", "/a/%2E%2e", "/a/.%2e/b", "/a/%2e/b", "/a/..%2fb", "/a/..%2Fb", "/a/%2e%2e%2fb",
		"/a/..%5cb", "/a/b%2f..", "/a?x=y", "/a#f", "/a\\b", "/a\\..\\b", "/a b", "/a\nb", "/a\x00",
		"/a\x7f", "/a%zz", "/a%2", "/a%", "/é", "/a\"b", "/a<b>", "/a%0",
	}
	for _, p := range allowed {
		t.Run("allowed "+p, func(t *testing.T) {
			if err := checkPath(p); err != nil {
				t.Errorf("checkPath(%q) = %v, want nil", p, err)
			}
		})
	}
	for _, p := range refused {
		t.Run("refused "+p, func(t *testing.T) {
			if err := checkPath(p); !errors.Is(err, ErrBadPath) {
				t.Errorf("checkPath(%q) = %v, want ErrBadPath", p, err)
			}
		})
	}
}
