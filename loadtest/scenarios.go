package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jhump/protoreflect/dynamic"
	"google.golang.org/protobuf/runtime/protoiface"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// Scenario is one RPC driven with requests drawn from the data set.
type Scenario struct {
	Name   string // the RPC's short name, as in --scenario and the table
	Call   string // fully-qualified method for ghz
	Writes bool   // changes state (run last in the benchmark)
	build  func(d *Dataset, i int) protoiface.MessageV1
}

// noPermission is held by nobody, so CheckPermission answers both ways.
const noPermission = "loadtest:none"

// scenarios are the nine RPCs, in the README's order.
var scenarios = []Scenario{
	{Name: "GetUser", build: func(d *Dataset, i int) protoiface.MessageV1 {
		return &authpb.GetUserRequest{UserId: d.user(i).ID}
	}},
	{Name: "GetUsersByIds", build: func(d *Dataset, i int) protoiface.MessageV1 {
		ids := make([]string, 10)
		for k := range ids {
			ids[k] = d.user(i*10 + k).ID
		}
		return &authpb.GetUsersByIdsRequest{UserIds: ids}
	}},
	{Name: "VerifyToken", build: func(d *Dataset, i int) protoiface.MessageV1 {
		return &authpb.VerifyTokenRequest{Token: d.user(i).Token}
	}},
	{Name: "CheckUserExists", build: func(d *Dataset, i int) protoiface.MessageV1 {
		return &authpb.CheckUserExistsRequest{UserId: d.user(i).ID}
	}},
	{Name: "GetUserByEmail", build: func(d *Dataset, i int) protoiface.MessageV1 {
		// Upper case on odd calls: the look-up is case-insensitive.
		e := d.user(i).Email
		if i%2 == 1 {
			e = strings.ToUpper(e)
		}
		return &authpb.GetUserByEmailRequest{Email: e}
	}},
	{Name: "ListUsers", build: func(d *Dataset, i int) protoiface.MessageV1 {
		// Mostly the first pages, as a UI or a sync job would read them:
		// the first, then the next ones by page_token (keyset; by offset
		// when the server gave no tokens).
		if k := i % 5; k > 0 && k <= len(d.PageTokens) {
			return &authpb.ListUsersRequest{Limit: 20, PageToken: d.PageTokens[k-1]}
		}
		return &authpb.ListUsersRequest{Limit: 20, Offset: int32(i%5) * 20}
	}},
	{Name: "CheckPermission", build: func(d *Dataset, i int) protoiface.MessageV1 {
		p := d.Permission
		if i%4 == 3 || p == "" {
			p = noPermission
		}
		return &authpb.CheckPermissionRequest{UserId: d.user(i).ID, Permission: p}
	}},
	{Name: "GetUserPermissions", build: func(d *Dataset, i int) protoiface.MessageV1 {
		return &authpb.GetUserPermissionsRequest{UserId: d.user(i).ID}
	}},
	{Name: "RecordFailedLogin", Writes: true, build: func(d *Dataset, i int) protoiface.MessageV1 {
		return &authpb.RecordFailedLoginRequest{UserId: d.user(i).ID}
	}},
}

// healthScenario is the benchmark's floor: the cheapest call the server has.
var healthScenario = Scenario{
	Name: "HealthCheck", Call: grpc_health_v1.Health_ServiceDesc.ServiceName + "/Check",
	build: func(*Dataset, int) protoiface.MessageV1 { return &grpc_health_v1.HealthCheckRequest{} },
}

func init() {
	for i := range scenarios {
		scenarios[i].Call = authpb.AuthService_ServiceDesc.ServiceName + "/" + scenarios[i].Name
	}
}

func (d *Dataset) user(i int) DataUser { return d.Users[i%len(d.Users)] }

// scenarioByName finds one of the nine RPCs (or HealthCheck).
func scenarioByName(name string) (Scenario, error) {
	for _, s := range append(scenarios, healthScenario) {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	names := make([]string, 0, len(scenarios)+1)
	for _, s := range scenarios {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("unknown scenario %q: want mix, all, HealthCheck or one of %s", name, strings.Join(names, ", "))
}

// maxMessages bounds how many distinct requests are prepared per scenario;
// calls cycle through them.
const maxMessages = 2048

// messages prepares a scenario's requests once, so the load generator spends
// its CPU on calls, not on building requests.
func (s Scenario) messages(d *Dataset) ([]*dynamic.Message, error) {
	n := len(d.Users)
	if n > maxMessages {
		n = maxMessages
	}
	out := make([]*dynamic.Message, n)
	for i := range out {
		m, err := dynamic.AsDynamicMessage(s.build(d, i))
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// Weight is one scenario's share of the mix.
type Weight struct {
	Scenario Scenario
	Weight   float64
}

// defaultMix resembles inter-service traffic: every request's token is
// verified and the caller's user read; the rest are occasional.
const defaultMix = "VerifyToken=40,GetUser=25,CheckPermission=12,GetUsersByIds=6,CheckUserExists=5," +
	"GetUserPermissions=5,GetUserByEmail=4,ListUsers=2,RecordFailedLogin=1"

// parseMix reads "Name=weight,..." into weights that sum to 1.
func parseMix(s string) ([]Weight, error) {
	var out []Weight
	var total float64
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("--mix: %q is not Name=weight", part)
		}
		sc, err := scenarioByName(name)
		if err != nil {
			return nil, fmt.Errorf("--mix: %w", err)
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--mix: weight of %s must be a positive number, got %q", name, w)
		}
		if seen[sc.Name] {
			return nil, fmt.Errorf("--mix: %s given twice", sc.Name)
		}
		seen[sc.Name] = true
		out = append(out, Weight{sc, v})
		total += v
	}
	for i := range out {
		out[i].Weight /= total
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out, nil
}
