package aggregate

import (
	"time"
)

// CallConfig declares one downstream call of a composite endpoint.
type CallConfig struct {
	// Name identifies the call: it is the call's key in the response and the
	// first segment of references to its result ({user.team_id}). Required.
	Name string `yaml:"name"`
	// Upstream names a configured upstream. Required.
	Upstream string `yaml:"upstream"`
	// Method is the HTTP method; default GET. Only GET and HEAD are allowed:
	// composite endpoints read, and a read may be retried.
	Method string `yaml:"method"`
	// Path is a template for the request path, e.g. "/users/{id}/orders".
	// Required; must start with "/".
	Path string `yaml:"path"`
	// Query maps query parameter names to templates, e.g. {limit: "{limit}"}.
	// A lone reference to an absent optional parameter leaves the parameter out.
	Query map[string]string `yaml:"query"`
	// Optional calls may fail: their part becomes null, the response is still
	// 200 and lists the part in the Braid-Degraded header. Default false:
	// a failed call fails the request.
	Optional bool `yaml:"optional"`
	// Hidden leaves the call's result out of the response; it is then only
	// used by the calls that reference it. Default false.
	Hidden bool `yaml:"hidden"`
	// As is the call's key in the response; default Name.
	As string `yaml:"as"`
	// Timeout bounds this call inside the route's deadline; default 0, which
	// means the route's remaining deadline.
	Timeout time.Duration `yaml:"timeout"`
	// Batch makes the call a batch join; see BatchConfig.
	Batch *BatchConfig `yaml:"batch"`
	// Cache caches the call's answers (a batch call's, one entry per key);
	// see CacheConfig. Default none.
	Cache *CacheConfig `yaml:"cache"`
}

// CacheConfig caches a call's answers in L1 (in process) and L2 (Redis):
//
//	cache: {ttl: 30s, namespace: "user:{id}", stale_while_revalidate: 10s}
//	cache: {ttl: 60s, tags: ["product:{key}"]}   # a batch call: per key
//
// Namespace and tags are templates over the route's parameters and, in a
// batch call, {key}: invalidating a namespace or a tag (the admin API
// POST /cache/invalidate) drops every entry under it on every replica.
type CacheConfig struct {
	// TTL is how long an answer is fresh. Required, above 0.
	TTL time.Duration `yaml:"ttl"`
	// Namespace is a template naming a group of entries invalidated
	// together, e.g. "user:{id}". Default none.
	Namespace string `yaml:"namespace"`
	// Tags are templates; an entry carries every tag, e.g. "product:{key}".
	// Default none.
	Tags []string `yaml:"tags"`
	// StaleWhileRevalidate serves an expired answer up to this long after
	// its TTL while one background fetch refreshes it. Default 0.
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	// StaleIfError serves an expired answer up to this long after its TTL
	// when the fetch fails or the upstream's breaker is open. Default 0.
	StaleIfError time.Duration `yaml:"stale_if_error"`
	// NegativeTTL caches a 404 answer this long (in process only).
	// Default 0: never.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
}

// BatchConfig turns a call into a batch join: it collects keys from another
// call's result, fetches them with one request per chunk of MaxBatch keys,
// and stitches each fetched object back next to its key. A batch call is not
// a part of the response itself: its results appear where they are stitched.
//
// The keys come from an upstream, so they are checked before anything is
// fetched (or looked up in the cache). The batch call fails, as bad data
// from the call holding the keys (a *DataError naming that call and its
// upstream, matching ErrBadData: a 502), when the answer holds more than
// MaxKeys distinct keys, an empty key, or a key containing Separator:
// joined, such a key would reach the upstream as several ids or none. Keys
// are not percent-encoded instead, since an upstream splitting Param at
// Separator would not decode them.
//
// In the batch response, the first object for a key wins and later
// duplicates are ignored; an object for a key the request did not ask for
// is ignored too (it is neither stitched nor cached).
type BatchConfig struct {
	// Keys is the key path to collect, starting with the call that holds
	// them, e.g. "orders[].items[].product_id". Keys are deduplicated;
	// numbers and strings with the same text are the same key.
	// Required.
	Keys string `yaml:"keys"`
	// Stitch is where each fetched object goes, starting with the same call,
	// e.g. "orders[].items[].product". Everything before its last member must
	// be a prefix of Keys: the object is set beside the key it was fetched
	// for (an array of objects when the rest of Keys walks an array), and
	// replaces any member of that name already there. A key with no object
	// stitches as null and is reported. Required.
	Stitch string `yaml:"stitch"`
	// Param is the query parameter that carries the keys; default "ids".
	Param string `yaml:"param"`
	// Separator joins keys in Param; default ",".
	Separator string `yaml:"separator"`
	// MaxBatch is the most keys in one request; default 100.
	MaxBatch int `yaml:"max_batch"`
	// MaxKeys is the most distinct keys one call may fetch, across all its
	// requests; beyond it the call fails without fetching anything.
	// Default 1000 (10 requests at the default MaxBatch).
	MaxKeys int `yaml:"max_keys"`
	// Concurrency is how many chunk requests run at once; default 4.
	Concurrency int `yaml:"concurrency"`
	// Items is the path inside the batch response to the array of objects,
	// e.g. "data.products"; default "", meaning the response is the array.
	Items string `yaml:"items"`
	// KeyField is the member of each fetched object that holds its key;
	// default "id".
	KeyField string `yaml:"key_field"`
}

func (b BatchConfig) withDefaults() BatchConfig {
	if b.Param == "" {
		b.Param = "ids"
	}
	if b.Separator == "" {
		b.Separator = ","
	}
	if b.MaxBatch == 0 {
		b.MaxBatch = 100
	}
	if b.MaxKeys == 0 {
		b.MaxKeys = 1000
	}
	if b.Concurrency == 0 {
		b.Concurrency = 4
	}
	if b.KeyField == "" {
		b.KeyField = "id"
	}
	return b
}
