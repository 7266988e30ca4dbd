// Package oxdtest is the test kit of oxd for Go: NewTestOP starts the
// development OP (package devop) for the duration of a test, NewServer
// starts that OP with an oxd engine in front of it and a registered
// site, and BrowserLogin signs in through the OP's login form over HTTP.
//
// The OP itself lives in package github.com/oxdgo/oxd/oxdtest/devop,
// which does not import package testing, so that programs (oxd-server
// -dev-op, the examples) can embed it. The names below are that
// package's, kept here so tests written against oxdtest keep compiling;
// see devop for the OP's endpoints and behaviour.
package oxdtest

import (
	"testing"

	"github.com/oxdgo/oxd/oxdtest/devop"
)

// NewTestOP starts an OP like StartOP and closes it when the test ends.
// It fails the test if the OP cannot start.
func NewTestOP(t testing.TB, cfg OPConfig) *OP {
	t.Helper()
	op, err := devop.StartOP(cfg)
	if err != nil {
		t.Fatalf("oxdtest: start OP: %v", err)
	}
	t.Cleanup(op.Close)
	return op
}

// The development OP's types (package devop).
type (
	// OP is devop.OP, the development OP.
	OP = devop.OP
	// OPConfig is devop.OPConfig.
	OPConfig = devop.OPConfig
	// User is devop.User, an account of the OP.
	User = devop.User
	// Endpoint is devop.Endpoint, for OP.Calls and OP.SetFault.
	Endpoint = devop.Endpoint
	// Fault is devop.Fault, for OP.SetFault.
	Fault = devop.Fault
	// PolicyRequest is devop.PolicyRequest.
	PolicyRequest = devop.PolicyRequest
	// PolicyDecision is devop.PolicyDecision.
	PolicyDecision = devop.PolicyDecision
	// StaticClient is devop.StaticClient, a pre-registered client of the
	// OP (OPConfig.Clients).
	StaticClient = devop.StaticClient
)

// The endpoints of the OP (devop.Endpoint*).
const (
	EndpointDiscovery     = devop.EndpointDiscovery
	EndpointUMADiscovery  = devop.EndpointUMADiscovery
	EndpointJWKS          = devop.EndpointJWKS
	EndpointRegistration  = devop.EndpointRegistration
	EndpointAuthorize     = devop.EndpointAuthorize
	EndpointToken         = devop.EndpointToken
	EndpointUserinfo      = devop.EndpointUserinfo
	EndpointEndSession    = devop.EndpointEndSession
	EndpointIntrospection = devop.EndpointIntrospection
	EndpointRevocation    = devop.EndpointRevocation
	EndpointResourceSet   = devop.EndpointResourceSet
	EndpointPermission    = devop.EndpointPermission
	EndpointClaims        = devop.EndpointClaims
)

// The faults of OP.SetFault (devop.Fault*).
const (
	FaultNone       = devop.FaultNone
	FaultGarbage    = devop.FaultGarbage
	FaultSlow       = devop.FaultSlow
	FaultUnknownKey = devop.FaultUnknownKey
	FaultHTTP500    = devop.FaultHTTP500
)

// GrantTypeUMATicket is devop.GrantTypeUMATicket.
const GrantTypeUMATicket = devop.GrantTypeUMATicket

// The OP's errors (the same values as devop's, for errors.Is).
var (
	ErrInvalidIssuer = devop.ErrInvalidIssuer
	ErrLoginFailed   = devop.ErrLoginFailed
	ErrInvalidClient = devop.ErrInvalidClient
)

// DemoUsers is devop.DemoUsers (the same slice).
var DemoUsers = devop.DemoUsers

// NewOP is devop.NewOP.
func NewOP(issuer string, cfg OPConfig) (*OP, error) { return devop.NewOP(issuer, cfg) }

// StartOP is devop.StartOP.
func StartOP(cfg OPConfig) (*OP, error) { return devop.StartOP(cfg) }

// DefaultPolicy is devop.DefaultPolicy.
func DefaultPolicy(req PolicyRequest) PolicyDecision { return devop.DefaultPolicy(req) }

// Grant is devop.Grant.
func Grant() PolicyDecision { return devop.Grant() }

// Deny is devop.Deny.
func Deny() PolicyDecision { return devop.Deny() }

// NeedInfo is devop.NeedInfo.
func NeedInfo(claims ...string) PolicyDecision { return devop.NeedInfo(claims...) }
