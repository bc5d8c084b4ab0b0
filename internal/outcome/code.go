package outcome

import "net/http"

// Code is a gRPC/Connect status code, numbered as both protocols number
// them (connect.Code's values), so that a value read off the wire is the
// code itself.
type Code uint8

// Codes.
const (
	CodeOK Code = iota
	CodeCanceled
	CodeUnknown
	CodeInvalidArgument
	CodeDeadlineExceeded
	CodeNotFound
	CodeAlreadyExists
	CodePermissionDenied
	CodeResourceExhausted
	CodeFailedPrecondition
	CodeAborted
	CodeOutOfRange
	CodeUnimplemented
	CodeInternal
	CodeUnavailable
	CodeDataLoss
	CodeUnauthenticated
	numCodes
)

// NumCodes is how many Code values there are (for tables).
const NumCodes = int(numCodes)

// codeNames are connect's names of the codes (Connect's wire names).
var codeNames = [...]string{
	"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded",
	"not_found", "already_exists", "permission_denied", "resource_exhausted",
	"failed_precondition", "aborted", "out_of_range", "unimplemented",
	"internal", "unavailable", "data_loss", "unauthenticated",
}

// String is the code's name as connect.Code spells it ("not_found").
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// codeByName reads a Connect error's code name; unknown names are
// CodeUnknown, as the Connect protocol says.
func codeByName(name string) Code {
	for i, n := range codeNames {
		if n == name {
			return Code(i)
		}
	}
	return CodeUnknown
}

// CodeFromHTTP is the code a gRPC or Connect client infers from an HTTP
// status that carries no RPC status (the gRPC "HTTP to gRPC status code
// mapping", which the Connect protocol shares).
func CodeFromHTTP(status int) Code {
	switch status {
	case http.StatusOK:
		return CodeOK
	case http.StatusBadRequest:
		return CodeInternal
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodePermissionDenied
	case http.StatusNotFound:
		return CodeUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return CodeUnavailable
	}
	if status < 400 {
		return CodeOK
	}
	return CodeUnknown
}

// CodeFromReset is the code a gRPC client reports for a stream the server
// reset with the HTTP/2 error code rst (grpc-go's mapping).
func CodeFromReset(rst uint32) Code {
	switch rst {
	case 0x8: // CANCEL
		return CodeCanceled
	case 0x7: // REFUSED_STREAM
		return CodeUnavailable
	case 0xb: // ENHANCE_YOUR_CALM
		return CodeResourceExhausted
	case 0xc: // INADEQUATE_SECURITY
		return CodePermissionDenied
	}
	return CodeInternal
}
