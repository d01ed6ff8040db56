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
// path that meets a string where it wants an array).
var ErrBadData = errors.New("unexpected upstream data")

// ErrPanic is wrapped when a call's goroutine panicked; the panic value and
// stack follow in the message.
var ErrPanic = errors.New("internal error")

// InputError is a request parameter that cannot be used: the client's fault.
type InputError struct {
	Param string
	Msg   string
}

func (e *InputError) Error() string { return fmt.Sprintf("parameter %s %s", e.Param, e.Msg) }

// CallError is the failure of one call of a plan. Err wraps the cause: an
// *upstream.Error, a context error, ErrDependencyFailed or ErrBadData.
type CallError struct {
	Call     string
	Upstream string
	Err      error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("call %q (upstream %s): %v", e.Call, e.Upstream, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }
