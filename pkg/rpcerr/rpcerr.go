// Package rpcerr is the one place domain errors become gRPC statuses.
//
// Handlers and stores return errors built here (or plain errors). The server's
// interceptors turn them into statuses: typed errors keep their code, field and
// reason (as google.rpc.BadRequest and ErrorInfo details); anything else is
// logged whole and returned as a bare Internal, so clients never see SQL or
// stack details. A panic in a handler is recovered the same way.
package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// Domain is the ErrorInfo domain of every bcx error.
const Domain = "bcx.exchange"

// Error is an expected failure with its gRPC code.
type Error struct {
	Code codes.Code
	// Field is the request field at fault ("instrument.spec.price_tick"), if any.
	Field string
	// Reason is a stable UPPER_SNAKE code a client can switch on.
	Reason string
	Msg    string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Msg
	}
	return e.Msg
}

// GRPCStatus lets status.FromError and grpc itself see the code and details.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Error())
	var details []protoadapt.MessageV1
	if e.Field != "" {
		details = append(details, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: e.Field, Description: e.Msg},
		}})
	}
	if e.Reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason, Domain: Domain})
	}
	if len(details) > 0 {
		if withDetails, err := st.WithDetails(details...); err == nil {
			return withDetails
		}
	}
	return st
}

// Invalid is InvalidArgument for one field.
func Invalid(field, format string, args ...any) error {
	return &Error{Code: codes.InvalidArgument, Field: field, Reason: "INVALID_ARGUMENT", Msg: fmt.Sprintf(format, args...)}
}

// InvalidReason is InvalidArgument for one field with a specific reason code.
func InvalidReason(field, reason, format string, args ...any) error {
	return &Error{Code: codes.InvalidArgument, Field: field, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// NotFound is the answer for an object that does not exist, and equally for one
// the caller may not see.
func NotFound(kind, id string) error {
	return &Error{Code: codes.NotFound, Reason: "NOT_FOUND", Msg: fmt.Sprintf("%s %q not found", kind, id)}
}

// AlreadyExists is for a create whose natural key is taken.
func AlreadyExists(field, format string, args ...any) error {
	return &Error{Code: codes.AlreadyExists, Field: field, Reason: "ALREADY_EXISTS", Msg: fmt.Sprintf(format, args...)}
}

// Precondition is FailedPrecondition: the request is well-formed but the state
// of the system refuses it (wrong phase, insufficient funds, receipt pledged).
func Precondition(reason, format string, args ...any) error {
	return &Error{Code: codes.FailedPrecondition, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Denied is PermissionDenied: the caller's role may not make this call.
func Denied(format string, args ...any) error {
	return &Error{Code: codes.PermissionDenied, Reason: "PERMISSION_DENIED", Msg: fmt.Sprintf(format, args...)}
}

// Unauthenticated is for a missing, malformed, unknown or revoked token.
func Unauthenticated(format string, args ...any) error {
	return &Error{Code: codes.Unauthenticated, Reason: "UNAUTHENTICATED", Msg: fmt.Sprintf(format, args...)}
}

// Unimplemented marks an RPC whose issue has not landed yet.
func Unimplemented(method string) error {
	return &Error{Code: codes.Unimplemented, Reason: "UNIMPLEMENTED", Msg: method + " is not implemented yet"}
}

// ToStatus converts any error to the status a client should see. Unexpected
// errors are logged and hidden behind Internal.
func ToStatus(ctx context.Context, logger *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e.GRPCStatus().Err()
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	logger.ErrorContext(ctx, "internal error", "method", method, "error", err.Error())
	return status.Error(codes.Internal, "internal error")
}

// Recovered logs msg for a panic recovered from a handler of method, with
// its stack, and returns the error to answer with instead: a bare Internal.
// Call it from a deferred function with a non-nil value of recover().
func Recovered(ctx context.Context, logger *slog.Logger, msg, method string, r any) error {
	logger.ErrorContext(ctx, msg, "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error")
}

// UnaryInterceptor maps errors and recovers panics. It must be the outermost
// interceptor so it also sees errors from the others.
func UnaryInterceptor(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				resp, err = nil, Recovered(ctx, logger, "panic in handler", info.FullMethod, r)
			}
		}()
		resp, err = handler(ctx, req)
		return resp, ToStatus(ctx, logger, info.FullMethod, err)
	}
}

// StreamInterceptor is UnaryInterceptor for streams.
func StreamInterceptor(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = Recovered(ss.Context(), logger, "panic in stream handler", info.FullMethod, r)
			}
		}()
		return ToStatus(ss.Context(), logger, info.FullMethod, handler(srv, ss))
	}
}
