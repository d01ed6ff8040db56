package auth

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestLookup(t *testing.T) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(`{
		"sub": "user-42", "tenant": "acme", "admin": true, "beta": false,
		"n": 42, "neg": -7, "zero": -0, "big": 12345678901234567890123,
		"float": 1.50, "exp1": 1e3, "expneg": 2.5E-3, "negzero": -0.0,
		"org": {"id": 7, "name": "Acme", "deep": {"x": "y"}},
		"list": [1, 2], "nothing": null, "dotted.name": "hidden", "": "empty"
	}`)))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	id := &Identity{Subject: "user-42", Issuer: testIssuer, Claims: claims}
	for _, tc := range []struct {
		path string
		want string
		ok   bool
	}{
		{"sub", "user-42", true},
		{"iss", testIssuer, true},
		{"claims.sub", "user-42", true},
		{"claims.tenant", "acme", true},
		{"claims.admin", "true", true},
		{"claims.beta", "false", true},
		{"claims.n", "42", true},
		{"claims.neg", "-7", true},
		{"claims.zero", "0", true},
		{"claims.big", "12345678901234567890123", true},
		{"claims.float", "1.5", true},
		{"claims.exp1", "1000", true},
		{"claims.expneg", "0.0025", true},
		{"claims.negzero", "0", true},
		{"claims.org.id", "7", true},
		{"claims.org.deep.x", "y", true},
		{"claims.org", "", false},
		{"claims.org.deep", "", false},
		{"claims.list", "", false},
		{"claims.list.0", "", false},
		{"claims.nothing", "", false},
		{"claims.missing", "", false},
		{"claims.org.missing", "", false},
		{"claims.tenant.x", "", false},
		{"claims.dotted.name", "", false},
		{"claims.", "", false},
		{"claims..tenant", "", false},
		{"claims.org..id", "", false},
		{"claims", "", false},
		{"tenant", "", false},
		{"", "", false},
	} {
		got, ok := id.Lookup(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := (&Identity{}).Lookup("sub"); ok {
		t.Error(`Lookup("sub") without a subject reported true`)
	}
	if _, ok := (&Identity{}).Lookup("claims.x"); ok {
		t.Error(`Lookup on nil claims reported true`)
	}
}

func TestCanonicalNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "10": "10", "1.0": "1", "1e2": "100", "1E+2": "100", "-1.25e1": "-12.5",
		"0.1": "0.1", "123456789.5": "123456789.5", "-0e5": "0",
	} {
		if got, ok := canonicalNumber(json.Number(in)); !ok || got != want {
			t.Errorf("canonicalNumber(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := canonicalNumber("1e400"); ok {
		t.Error("a number beyond float64 was usable")
	}
}
