package auth

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestVerifiedTokens: a token that passed is checked in full once and then
// answered from memory, with the same Identity, until the earlier of its
// expiry (plus skew) and verifiedTTL; a refused token is checked every
// time.
func TestVerifiedTokens(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	tok := sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now()))

	first := mustVerify(t, v, tok)
	for range 5 {
		if id := mustVerify(t, v, tok); id != first {
			t.Fatal("a remembered token gave another Identity")
		}
	}
	if n := v.checked.Load(); n != 1 {
		t.Errorf("6 verifications of one token checked it %d times, want 1", n)
	}

	clk.Advance(verifiedTTL) // still valid for 59 more minutes: checked again
	mustVerify(t, v, tok)
	if n := v.checked.Load(); n != 2 {
		t.Errorf("after verifiedTTL: checked %d times, want 2", n)
	}

	clk.Advance(time.Hour) // past exp + skew: refused, never from memory
	if _, err := verify(v, tok); !errors.Is(err, ErrExpired) {
		t.Errorf("expired token: %v, want ErrExpired", err)
	}

	forged := tok[:len(tok)-4] + "AAAA"
	for range 3 {
		if _, err := verify(v, forged); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if n := v.checked.Load(); n != 3+3 {
		t.Errorf("checked %d times, want 6: refusals are never remembered", n)
	}

	short := sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(clk.Now()), map[string]any{"exp": clk.Now().Add(10 * time.Second).Unix()}))
	mustVerify(t, v, short)
	clk.Advance(10*time.Second + v.skew)
	if _, err := verify(v, short); !errors.Is(err, ErrExpired) {
		t.Errorf("a token expiring before verifiedTTL was served from memory after exp + skew: %v", err)
	}
}

// TestVerifiedCacheBound: the cache never holds more than verifiedMax
// entries, and drops entries past their time first.
func TestVerifiedCacheBound(t *testing.T) {
	c := newVerifiedCache()
	now := epoch
	id := &Identity{Subject: "x"}
	for i := range verifiedMax + 100 {
		key := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		c.put(key, id, now.Add(time.Minute), now)
		if n := c.len(); n > verifiedMax {
			t.Fatalf("%d entries after %d puts, over %d", n, i+1, verifiedMax)
		}
	}
	key := sha256.Sum256([]byte("kept"))
	c.put(key, id, now.Add(time.Hour), now)
	if _, ok := c.get(key, now); !ok {
		t.Error("the entry just put is missing")
	}
	if _, ok := c.get(key, now.Add(time.Hour)); ok {
		t.Error("an entry was served at its until")
	}
}
