package matching

import (
	"slices"
	"testing"

	"google.golang.org/grpc"

	marketdatav1 "github.com/bcx-exchange/bcx/proto/bcx/marketdata/v1"
	tradingv1 "github.com/bcx-exchange/bcx/proto/bcx/trading/v1"
	typev1 "github.com/bcx-exchange/bcx/proto/bcx/type/v1"
)

// TestPolicyCoversEveryMethod: every method of the three services has an
// entry (the interceptor refuses unlisted ones), with the intended roles.
func TestPolicyCoversEveryMethod(t *testing.T) {
	p := Policy()
	want := map[string][]typev1.Role{
		tradingv1.TradingService_ServiceDesc.ServiceName:       {typev1.Role_ROLE_MEMBER},
		tradingv1.CoreService_ServiceDesc.ServiceName:          {typev1.Role_ROLE_SERVICE, typev1.Role_ROLE_OPERATOR},
		marketdatav1.MarketDataService_ServiceDesc.ServiceName: {typev1.Role_ROLE_MEMBER, typev1.Role_ROLE_WAREHOUSE, typev1.Role_ROLE_CLEARING_BANK, typev1.Role_ROLE_OPERATOR, typev1.Role_ROLE_SERVICE},
	}
	n := 0
	for _, desc := range []grpc.ServiceDesc{tradingv1.TradingService_ServiceDesc, tradingv1.CoreService_ServiceDesc, marketdatav1.MarketDataService_ServiceDesc} {
		var names []string
		for _, m := range desc.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range desc.Streams {
			names = append(names, s.StreamName)
		}
		for _, name := range names {
			full := "/" + desc.ServiceName + "/" + name
			roles, ok := p[full]
			if !ok {
				t.Errorf("%s missing from the policy", full)
				continue
			}
			n++
			w := want[desc.ServiceName]
			switch full {
			case "/bcx.trading.v1.CoreService/SetInstrumentPhase":
				w = []typev1.Role{typev1.Role_ROLE_OPERATOR}
			case "/bcx.trading.v1.CoreService/SetFxRate", "/bcx.trading.v1.CoreService/SetFundingCurrency":
				// Settlement only: an operator publishes rates there.
				w = []typev1.Role{typev1.Role_ROLE_SERVICE}
			}
			if len(roles) != len(w) {
				t.Errorf("%s: roles %v, want %v", full, roles, w)
			}
			for _, r := range w {
				if !slices.Contains(roles, r) {
					t.Errorf("%s: roles %v, want %v", full, roles, w)
				}
			}
		}
	}
	if n != len(p) {
		t.Errorf("policy has %d entries, the services %d methods", len(p), n)
	}
}
