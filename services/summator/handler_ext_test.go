package summator_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	legacysummator "github.com/switchyard/switchyard/gen/legacy/summator"
	"github.com/switchyard/switchyard/gen/legacy/summator/summatorconnect"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The service through the whole server, in every protocol. The package
// doc states the rule these tests hold it to.

func TestSum(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := summatorv1connect.NewSummatorServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		sum, err := c.Sum(testserver.CallContext(t), connect.NewRequest(&summatorv1.SumRequest{Value1: 5, Value2: 3}))
		if err != nil || sum.Msg.GetValue() != 8 {
			t.Errorf("Sum(5, 3) = %v, %v", sum, err)
		}
		sum, err = c.Sum(testserver.CallContext(t), connect.NewRequest(&summatorv1.SumRequest{Value1: 0.1, Value2: 0.2}))
		if err != nil || sum.Msg.GetValue() != float32(0.1)+float32(0.2) {
			t.Errorf("Sum(0.1, 0.2) = %v, %v; want the float32 sum", sum, err)
		}
		_, err = c.Sum(testserver.CallContext(t), connect.NewRequest(&summatorv1.SumRequest{Value1: float32(math.NaN()), Value2: 1}))
		testserver.WantCode(t, err, connect.CodeInvalidArgument)
		_, err = c.Sum(testserver.CallContext(t), connect.NewRequest(&summatorv1.SumRequest{Value1: math.MaxFloat32, Value2: math.MaxFloat32}))
		testserver.WantCode(t, err, connect.CodeOutOfRange)
	})
}

// The tutorial's /Summator/sum keeps the v1 rules.
func TestLegacySum(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := summatorconnect.NewSummatorClient(srv.HTTPClient, srv.URL, p.Opts...)
		eight, err := c.Sum(testserver.CallContext(t), connect.NewRequest(&legacysummator.Number1{Value1: 5, Value2: 3}))
		if err != nil || eight.Msg.GetValue() != 8 {
			t.Errorf("/Summator/sum(5, 3) = %v, %v", eight, err)
		}
		_, err = c.Sum(testserver.CallContext(t), connect.NewRequest(&legacysummator.Number1{Value1: math.MaxFloat32, Value2: math.MaxFloat32}))
		testserver.WantCode(t, err, connect.CodeOutOfRange)
		_, err = c.Sum(testserver.CallContext(t), connect.NewRequest(&legacysummator.Number1{Value1: float32(math.Inf(1)), Value2: 1}))
		testserver.WantCode(t, err, connect.CodeInvalidArgument)
	})
}

// The rule per codec: a summand that is not a finite float32 is
// INVALID_ARGUMENT, however the codec spells it; two finite summands whose
// sum overflows float32 are OUT_OF_RANGE.
func TestSumRulePerCodec(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})

	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		// A binary client can only send float32 bits: 1e39 becomes +Inf in
		// the client, before it is sent.
		tooBig := float32(math.Inf(1))
		if f := 1e39; float32(f) != tooBig {
			t.Fatalf("float32(1e39) = %v, want +Inf", float32(f))
		}
		c := summatorv1connect.NewSummatorServiceClient(srv.HTTPClient, srv.URL)
		for _, tc := range []struct {
			a, b float32
			want connect.Code
		}{
			{tooBig, 1, connect.CodeInvalidArgument},
			{1, -tooBig, connect.CodeInvalidArgument},
			{float32(math.NaN()), 1, connect.CodeInvalidArgument},
			{math.MaxFloat32, math.MaxFloat32, connect.CodeOutOfRange},
			{-math.MaxFloat32, -math.MaxFloat32, connect.CodeOutOfRange},
			{math.MaxFloat32, 0, 0},
		} {
			res, err := c.Sum(testserver.CallContext(t), connect.NewRequest(&summatorv1.SumRequest{Value1: tc.a, Value2: tc.b}))
			if code := connect.CodeOf(err); (err == nil) != (tc.want == 0) || (err != nil && code != tc.want) {
				t.Errorf("Sum(%v, %v) = %v, %v; want code %v", tc.a, tc.b, res, err, tc.want)
			}
		}
	})

	t.Run("JSON", func(t *testing.T) {
		t.Parallel()
		// JSON carries any number, and names the non-finite ones.
		for _, tc := range []struct {
			body    string
			want    connect.Code // 0: OK
			message string       // a part of the error message
		}{
			{`{"value1":1e39,"value2":1}`, connect.CodeInvalidArgument, "value1: 1e39"},
			{`{"value1":1,"value2":-1e39}`, connect.CodeInvalidArgument, "value2: -1e39"},
			{`{"value1":"Infinity","value2":1}`, connect.CodeInvalidArgument, "value1 is +Inf"},
			{`{"value1":1,"value2":"NaN"}`, connect.CodeInvalidArgument, "value2 is NaN"},
			{`{"value1":3e38,"value2":3e38}`, connect.CodeOutOfRange, "exceeds the float32 range"},
			{`{"value1":3.4028234e38,"value2":0}`, 0, ""},
		} {
			code, msg := postJSON(t, srv, tc.body)
			if code != tc.want || !strings.Contains(msg, tc.message) {
				t.Errorf("%s: code %v (%q), want %v with %q", tc.body, code, msg, tc.want, tc.message)
			}
		}
	})
}

// postJSON sends a Connect unary Sum with a JSON body as a browser or curl
// would, and returns the code (0 for OK) and the error message.
func postJSON(t *testing.T, srv *testserver.Server, body string) (connect.Code, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testserver.CallContext(t), http.MethodPost,
		srv.URL+summatorv1connect.SummatorServiceSumProcedure, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusOK {
		return 0, ""
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("HTTP %d, body %q: %v", res.StatusCode, data, err)
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(e.Code)); err != nil {
		t.Fatalf("code %q: %v", e.Code, err)
	}
	return code, e.Message
}
