package observability

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkinstr "go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The OTLP trace protocol written by hand: appendTraceRequest encodes an
// opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
// straight from the SDK's read-only spans into one byte slice. The OTLP
// exporter of opentelemetry-go first converts every span into generated
// protobuf structs (a pointer per span, attribute and value) and then
// marshals those: at 100 % sampling that conversion was a third of the
// export cost and most of its garbage. The bytes written here decode to
// the message that exporter sends (otlpencode_test.go compares the two on
// the same spans), with one addition: a link's trace_state, which the
// protocol has and that exporter leaves out.
//
// Field numbers are those of opentelemetry-proto v1 (trace.proto,
// common.proto, resource.proto, trace_service.proto).

// OTLP flag bits of Span.flags and Span.Link.flags beyond the W3C trace
// flags: whether the parent (the linked context) is known to be remote,
// and whether it is.
const (
	spanFlagsHasIsRemote = 0x100
	spanFlagsIsRemote    = 0x200
)

// appendTraceRequest appends the ExportTraceServiceRequest of spans to b.
// Spans are grouped by resource and then by instrumentation scope in the
// order each is first seen, as ResourceSpans and ScopeSpans.
func appendTraceRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	for i, s := range spans {
		if s == nil || seenResource(spans[:i], s.Resource()) {
			continue
		}
		res := s.Resource()
		var rs int
		b, rs = openMessage(b, 1) // ExportTraceServiceRequest.resource_spans
		if res != nil {
			var r int
			b, r = openMessage(b, 1) // ResourceSpans.resource
			it := res.Iter()
			for it.Next() {
				b = appendKeyValue(b, 1, it.Attribute()) // Resource.attributes
			}
			b = closeMessage(b, r)
		}
		for j := i; j < len(spans); j++ {
			t := spans[j]
			if t == nil || !sameResource(t.Resource(), res) {
				continue
			}
			if sc := t.InstrumentationScope(); !seenScope(spans[i:j], res, sc) {
				b = appendScopeSpans(b, spans[j:], res, sc)
			}
		}
		b = appendString(b, 3, res.SchemaURL()) // ResourceSpans.schema_url
		b = closeMessage(b, rs)
	}
	return b
}

// appendScopeSpans appends the ScopeSpans of the spans (from the first of
// spans on) of resource res and scope sc.
func appendScopeSpans(b []byte, spans []sdktrace.ReadOnlySpan, res *resource.Resource, sc sdkinstr.Scope) []byte {
	var ss int
	b, ss = openMessage(b, 2) // ResourceSpans.scope_spans
	if sc != (sdkinstr.Scope{}) {
		var m int
		b, m = openMessage(b, 1) // ScopeSpans.scope
		b = appendString(b, 1, sc.Name)
		b = appendString(b, 2, sc.Version)
		it := sc.Attributes.Iter()
		for it.Next() {
			b = appendKeyValue(b, 3, it.Attribute())
		}
		b = closeMessage(b, m)
	}
	for _, s := range spans {
		if inGroup(s, res, sc) {
			b = appendSpan(b, s)
		}
	}
	b = appendString(b, 3, sc.SchemaURL) // ScopeSpans.schema_url
	return closeMessage(b, ss)
}

// appendSpan appends s as ScopeSpans.spans.
func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	var m int
	b, m = openMessage(b, 2)
	sc, parent := s.SpanContext(), s.Parent()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, 1, tid[:])
	b = appendBytes(b, 2, sid[:])
	b = appendString(b, 3, sc.TraceState().String())
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, 4, psid[:])
	}
	b = appendString(b, 5, s.Name())
	b = appendVarint(b, 6, uint64(spanKind(s.SpanKind())))
	b = appendFixed64(b, 7, unixNano(s.StartTime().UnixNano()))
	b = appendFixed64(b, 8, unixNano(s.EndTime().UnixNano()))
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, 9, kv)
	}
	b = appendVarint(b, 10, clampCount(s.DroppedAttributes()))
	for _, e := range s.Events() {
		var em int
		b, em = openMessage(b, 11)
		b = appendFixed64(b, 1, unixNano(e.Time.UnixNano()))
		b = appendString(b, 2, e.Name)
		for _, kv := range e.Attributes {
			b = appendKeyValue(b, 3, kv)
		}
		b = appendVarint(b, 4, clampCount(e.DroppedAttributeCount))
		b = closeMessage(b, em)
	}
	b = appendVarint(b, 12, clampCount(s.DroppedEvents()))
	for _, l := range s.Links() {
		var lm int
		b, lm = openMessage(b, 13)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendBytes(b, 1, ltid[:])
		b = appendBytes(b, 2, lsid[:])
		b = appendString(b, 3, l.SpanContext.TraceState().String())
		for _, kv := range l.Attributes {
			b = appendKeyValue(b, 4, kv)
		}
		b = appendVarint(b, 5, clampCount(l.DroppedAttributeCount))
		b = appendFixed32(b, 6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		b = closeMessage(b, lm)
	}
	b = appendVarint(b, 14, clampCount(s.DroppedLinks()))
	// The status is always present, as the SDK's exporter sends it.
	st := s.Status()
	var sm int
	b, sm = openMessage(b, 15)
	b = appendString(b, 2, st.Description)
	b = appendVarint(b, 3, statusCode(st.Code))
	b = closeMessage(b, sm)
	b = appendFixed32(b, 16, spanFlags(sc.TraceFlags(), parent))
	return closeMessage(b, m)
}

// appendKeyValue appends kv as a KeyValue in field num. The value is
// always present, empty for an EMPTY value.
func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	var m, v int
	b, m = openMessage(b, num)
	b = appendString(b, 1, string(kv.Key))
	b, v = openMessage(b, 2)
	b = appendAnyValueFields(b, kv.Value)
	b = closeMessage(b, v)
	return closeMessage(b, m)
}

// appendAnyValueFields appends the oneof field of an AnyValue holding v.
// A oneof field is written even when it holds its type's zero value.
func appendAnyValueFields(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = appendUTF8(b, v.AsString())
	case attribute.BYTESLICE:
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, v.AsByteSlice())
	case attribute.BOOLSLICE:
		b = appendArray(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		b = appendArray(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		b = appendArray(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		b = appendArray(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		b = appendArray(b, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		var m int
		b, m = openMessage(b, 6) // AnyValue.kvlist_value
		for _, kv := range v.AsMap() {
			b = appendKeyValue(b, 1, kv) // KeyValueList.values
		}
		b = closeMessage(b, m)
	default:
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, "INVALID")
	}
	return b
}

// appendArray appends an AnyValue.array_value of vs.
func appendArray[T any](b []byte, vs []T, value func(T) attribute.Value) []byte {
	var m int
	b, m = openMessage(b, 5)
	for _, x := range vs {
		var e int
		b, e = openMessage(b, 1) // ArrayValue.values
		b = appendAnyValueFields(b, value(x))
		b = closeMessage(b, e)
	}
	return closeMessage(b, m)
}

// openMessage appends the tag of embedded message field num and one byte
// reserved for its length, and returns where that byte is.
func openMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b)
}

// closeMessage writes the length of the message opened at at (everything
// appended after the reserved byte), moving the message along when its
// length takes more than that one byte.
func closeMessage(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	k := protowire.SizeVarint(uint64(n))
	for range k - 1 {
		b = append(b, 0)
	}
	copy(b[at+k:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n)) // in place: b has room
	return b
}

// appendString appends a string field, left out when empty as proto3 does.
// Protobuf strings must be UTF-8 and collectors refuse a request holding
// one that is not (the SDK's exporter refuses to send it: one bad byte in,
// say, a client's URL path lost the whole batch), so invalid bytes are
// replaced with U+FFFD.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return appendUTF8(b, s)
}

func appendUTF8(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendVarint appends a varint field, left out when zero.
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

// seenResource reports whether one of spans has resource res.
func seenResource(spans []sdktrace.ReadOnlySpan, res *resource.Resource) bool {
	return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s != nil && sameResource(s.Resource(), res) })
}

// seenScope reports whether one of spans has resource res and scope sc.
func seenScope(spans []sdktrace.ReadOnlySpan, res *resource.Resource, sc sdkinstr.Scope) bool {
	return slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return inGroup(s, res, sc) })
}

// inGroup reports whether s belongs to the ScopeSpans of resource res and
// scope sc.
func inGroup(s sdktrace.ReadOnlySpan, res *resource.Resource, sc sdkinstr.Scope) bool {
	return s != nil && sameResource(s.Resource(), res) && s.InstrumentationScope() == sc
}

// sameResource reports whether a and b are the same resource: the same
// pointer (every span of a tracer provider shares one), else equivalent
// attribute sets, as the SDK's exporter groups them.
func sameResource(a, b *resource.Resource) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Equivalent() == b.Equivalent()
}

func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	f := uint32(tf) | spanFlagsHasIsRemote
	if parent.IsRemote() {
		f |= spanFlagsIsRemote
	}
	return f
}

// spanKind maps a span kind to OTLP's Span.SpanKind.
func spanKind(k trace.SpanKind) int {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	}
	return 0
}

// statusCode maps a status code to OTLP's Status.StatusCode, whose
// numbering differs from the API's (OK is 1 there, Error 2).
func statusCode(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

func unixNano(n int64) uint64 { return uint64(max(0, n)) }

func clampCount(n int) uint64 { return uint64(min(max(0, n), math.MaxUint32)) }
