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
}

// BatchConfig turns a call into a batch join: it collects keys from another
// call's result, fetches them with one request per chunk of MaxBatch keys,
// and stitches each fetched object back next to its key. A batch call is not
// a part of the response itself: its results appear where they are stitched.
type BatchConfig struct {
	// Keys is the key path to collect, starting with the call that holds
	// them, e.g. "orders[].items[].product_id". Keys are deduplicated.
	// Required.
	Keys string `yaml:"keys"`
	// Stitch is where each fetched object goes, starting with the same call,
	// e.g. "orders[].items[].product". Everything before its last member must
	// be a prefix of Keys: the object is set beside the key it was fetched
	// for (an array of objects when the rest of Keys walks an array). A key
	// with no object stitches as null and is reported. Required.
	Stitch string `yaml:"stitch"`
	// Param is the query parameter that carries the keys; default "ids".
	Param string `yaml:"param"`
	// Separator joins keys in Param; default ",".
	Separator string `yaml:"separator"`
	// MaxBatch is the most keys in one request; default 100.
	MaxBatch int `yaml:"max_batch"`
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
	if b.Concurrency == 0 {
		b.Concurrency = 4
	}
	if b.KeyField == "" {
		b.KeyField = "id"
	}
	return b
}
