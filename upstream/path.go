package upstream

import (
	"net/url"
	"strings"
)

// checkPath returns ErrBadPath unless p is a safe, already-escaped absolute
// path: it starts with "/", holds only characters allowed unescaped in a
// URL path plus valid %XX escapes, and no segment is "." or "..", even once
// percent-decoded (so "%2e%2e" and "..%2f" are refused too). Characters such
// as "?", "#", backslash, space, non-ASCII and control characters are
// refused because an escaped path never contains them.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return ErrBadPath
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return ErrBadPath
			}
			i += 2
		case !pathChar(c):
			return ErrBadPath
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if dotSegment(seg) {
			return ErrBadPath
		}
	}
	return nil
}

// dotSegment reports whether the raw path segment seg is, or decodes to
// something containing, a "." or ".." segment. Decoded slashes and
// backslashes count as separators, since some servers treat them so.
func dotSegment(seg string) bool {
	if !strings.ContainsAny(seg, ".%") {
		return false
	}
	dec, err := url.PathUnescape(seg)
	if err != nil {
		return true
	}
	for part := range strings.FieldsFuncSeq(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}

// pathChar reports whether c may appear unescaped in a URL path segment
// (RFC 3986 pchar, minus "%", plus "/").
func pathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
