package aggregate

import (
	"errors"
	"fmt"
)

// ErrDependencyFailed is wrapped by the error of a call that could not run
// because a call it references failed.
var ErrDependencyFailed = errors.New("dependency failed")

// ErrBadData is wrapped when a call's result does not have the shape that a
// reference or a batch join needs (a template value that is an object, a key
// path that meets a string where it wants an array), or holds a value that
// cannot be used where a reference puts it (a path segment of "..").
var ErrBadData = errors.New("unexpected upstream data")

// DataError is a value from one call's result that another call cannot
// use: missing, not a scalar, or not usable as a path segment. The
// upstream that sent it is at fault, not the client and not the call that
// needed it, which is never made. It matches ErrBadData. The failing
// call's *CallError wraps it.
type DataError struct {
	// Call is the call whose result held the value; Upstream is its
	// upstream, the one that sent the value.
	Call     string
	Upstream string
	// Ref is the reference, e.g. "user.team_id".
	Ref string
	// Msg says what is wrong with the value, as a predicate: "is missing
	// or null".
	Msg string
}

func (e *DataError) Error() string {
	return fmt.Sprintf("%v: {%s} %s (from call %q, upstream %s)", ErrBadData, e.Ref, e.Msg, e.Call, e.Upstream)
}

// Unwrap returns ErrBadData.
func (e *DataError) Unwrap() error { return ErrBadData }

// ErrPanic is wrapped when a call panicked, on whichever goroutine ran
// it; the panic value and stack follow in the message.
var ErrPanic = errors.New("internal error")

// InputError is a request parameter that cannot be used: the client's fault.
type InputError struct {
	Param string
	Msg   string
}

func (e *InputError) Error() string { return fmt.Sprintf("parameter %s %s", e.Param, e.Msg) }

// CallError is the failure of one call of a plan. Err wraps the cause: an
// *upstream.Error, a context error, ErrDependencyFailed, ErrBadData (a
// *DataError when the bad data came from another call's result) or an
// *InputError.
type CallError struct {
	Call     string
	Upstream string
	Err      error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("call %q (upstream %s): %v", e.Call, e.Upstream, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }
