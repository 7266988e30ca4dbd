package oxd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// snapshot returns what RegisterUMA registers: the resources for
// uma_rs_protect (templates in declaration order, conditions in
// declaration order, HEAD added to a GET condition when HEAD is not
// declared), their canonical lines, and the recorded declaration errors.
func (g *umaGuard) snapshot() (res []oxdclient.UMAResource, canon []string, browser bool, errs []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	errs = slices.Clone(g.errs)
	for _, t := range g.order {
		p := g.paths[t]
		explicitHead := false
		for _, c := range p.conds {
			if slices.Contains(c.methods, http.MethodHead) {
				explicitHead = true
			}
		}
		r := oxdclient.UMAResource{Path: t}
		for _, c := range p.conds {
			browser = browser || c.browser
			methods := slices.Clone(c.methods)
			if !explicitHead && slices.Contains(methods, http.MethodGet) {
				methods = append(methods, http.MethodHead)
			}
			oc := oxdclient.UMACondition{HTTPMethods: methods}
			if c.expr != nil {
				oc.ScopeExpression = &oxdclient.UMAScopeExpression{Rule: slices.Clone(c.expr.rule), Data: slices.Clone(c.expr.data)}
			} else {
				oc.Scopes = slices.Clone(c.scopes)
				oc.TicketScopes = slices.Clone(c.ticketScopes)
			}
			r.Conditions = append(r.Conditions, oc)
			canon = append(canon, canonicalCondition(t, methods, c.scopes, c.effectiveTicketScopes(), c.exprCanonical()))
		}
		res = append(res, r)
	}
	slices.Sort(canon)
	return res, canon, browser, errs
}

func fingerprint(canon []string) string {
	h := sha256.New()
	for _, l := range canon {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// RegisterUMA registers every declared route template with oxd
// (uma_rs_protect), once at startup after the routes are declared. It is
// idempotent across restarts: the first registration is made without
// overwrite; when oxd already protects resources for the site, the stored
// set (get_rp) is compared with the declared one and overwritten only
// when it differs, because an overwrite re-creates the resources at the AS
// with new ids and so invalidates the RPTs issued for them.
//
// It fails, registering nothing, when a declaration is invalid
// ([ErrUMADeclaration], listing every invalid declaration), when browser
// mode is used without UMAConfig.ClaimsRedirectURL, and when no issuer
// for the challenges can be found (set Config.UMA.Issuer). Routes declared
// after RegisterUMA are not protected at oxd and answer 500 until it is
// called again.
func (a *Auth) RegisterUMA(ctx context.Context) error {
	return a.uma.register(ctx)
}

// register is RegisterUMA.
func (g *umaGuard) register(ctx context.Context) error {
	res, canon, browser, errs := g.snapshot()
	if len(errs) > 0 {
		return fmt.Errorf("oxd: RegisterUMA: %w: %w", ErrUMADeclaration, errors.Join(errs...))
	}
	s := g.settings.Load()
	if (browser || s.browser) && s.claimsRedirect == "" {
		return fmt.Errorf("oxd: RegisterUMA: %w: browser mode needs Config.UMA.ClaimsRedirectURL", ErrUMAConfig)
	}
	if len(res) == 0 {
		return nil
	}
	fp := fingerprint(canon)
	_, err := g.client.UMARSProtect(ctx, oxdclient.UMARSProtectParams{OxdID: g.oxdID, Resources: res})
	switch {
	case err == nil:
		g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources registered",
			slog.Int("templates", len(res)), slog.String("fingerprint", fp))
	case errors.Is(err, oxdclient.ErrUMAProtectionExists):
		if err := g.reregister(ctx, res, fp, s.fingerprintFile); err != nil {
			return err
		}
	default:
		return registerError(err)
	}
	if s.fingerprintFile != "" {
		if err := writeFingerprint(s.fingerprintFile, g.oxdID, fp); err != nil {
			return fmt.Errorf("oxd: RegisterUMA: Config.UMA.FingerprintFile: %w", err)
		}
	}
	if _, err := g.issuerFor(ctx); err != nil {
		return fmt.Errorf("oxd: RegisterUMA: %w: %w", ErrUMAConfig, err)
	}
	return nil
}

// reregister handles resources oxd already protects for the site: kept
// when they are the declared ones (by get_rp, else by the fingerprint
// file), overwritten otherwise.
func (g *umaGuard) reregister(ctx context.Context, res []oxdclient.UMAResource, fp, fpFile string) error {
	stored, opHost, gerr := g.storedUMA(ctx)
	if gerr == nil && opHost != "" && g.issuer.Load() == nil && checkIssuer(opHost) == nil {
		g.setIssuer(opHost)
	}
	if gerr == nil && fingerprint(stored) == fp {
		g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources unchanged; registration kept",
			slog.Int("templates", len(res)), slog.String("fingerprint", fp))
		return nil
	}
	if gerr != nil && fpFile != "" && readFingerprint(fpFile, g.oxdID) == fp {
		g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources unchanged (fingerprint file); registration kept",
			slog.Int("templates", len(res)), slog.String("fingerprint", fp))
		return nil
	}
	if gerr != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "oxd: cannot read the registered UMA resources (get_rp) and no matching Config.UMA.FingerprintFile; re-registering them, which invalidates existing RPTs",
			slog.String("error", gerr.Error()))
	} else {
		g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: UMA resources changed; re-registering (existing RPTs for them become invalid)",
			slog.String("fingerprint", fp), slog.String("registered", fingerprint(stored)))
	}
	if _, err := g.client.UMARSProtect(ctx, oxdclient.UMARSProtectParams{OxdID: g.oxdID, Resources: res, Overwrite: true}); err != nil {
		return registerError(err)
	}
	g.cache.clear()
	return nil
}

// fingerprintRecord is the content of UMAConfig.FingerprintFile.
type fingerprintRecord struct {
	OxdID       string `json:"oxd_id"`
	Fingerprint string `json:"uma_resources_fingerprint"`
}

// readFingerprint returns the fingerprint recorded for oxdID, or "".
func readFingerprint(path, oxdID string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4096 {
		return ""
	}
	var rec fingerprintRecord
	if json.Unmarshal(b, &rec) != nil || rec.OxdID != oxdID {
		return ""
	}
	return rec.Fingerprint
}

// writeFingerprint replaces the file atomically (temporary file, rename).
func writeFingerprint(path, oxdID, fp string) error {
	if readFingerprint(path, oxdID) == fp {
		return nil
	}
	b, _ := json.Marshal(fingerprintRecord{OxdID: oxdID, Fingerprint: fp})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".oxd-uma-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func registerError(err error) error {
	var oe *oxdclient.Error
	if errors.As(err, &oe) {
		switch oe.Code {
		case oxdclient.CodeHTTPMethodNotUnique, oxdclient.CodeInvalidScopeExpression, oxdclient.CodeInvalidUMARequest:
			return fmt.Errorf("oxd: RegisterUMA: %w: uma_rs_protect: %w", ErrUMADeclaration, err)
		}
	}
	return fmt.Errorf("oxd: RegisterUMA: uma_rs_protect: %w", err)
}

// storedUMA reads the resources oxd stores for the site (get_rp) in
// canonical form, and the site's op_host.
func (g *umaGuard) storedUMA(ctx context.Context) (canon []string, opHost string, err error) {
	rp, err := g.client.GetRP(ctx, oxdclient.GetRPParams{OxdID: g.oxdID})
	if err != nil {
		return nil, "", err
	}
	var node struct {
		OPHost    string `json:"op_host"`
		Resources []struct {
			Path         string            `json:"path"`
			HTTPMethods  []string          `json:"http_methods"`
			Scopes       []string          `json:"scopes"`
			TicketScopes []string          `json:"ticketScopes"`
			Expressions  []json.RawMessage `json:"scope_expressions"`
		} `json:"uma_protected_resources"`
	}
	if err := json.Unmarshal(rp.Node, &node); err != nil {
		return nil, "", fmt.Errorf("get_rp: %w", oxdclient.ErrProtocol)
	}
	for _, r := range node.Resources {
		expr := ""
		if len(r.Expressions) > 0 {
			raw := r.Expressions[0]
			var s string
			if json.Unmarshal(raw, &s) == nil {
				raw = json.RawMessage(s)
			}
			var x struct {
				Rule json.RawMessage `json:"rule"`
				Data []string        `json:"data"`
			}
			if json.Unmarshal(raw, &x) != nil || len(x.Rule) == 0 {
				return nil, "", errors.New("get_rp: unreadable scope expression")
			}
			expr = scopeexpr.Canonical(x.Rule, x.Data)
		}
		canon = append(canon, canonicalCondition(r.Path, r.HTTPMethods, r.Scopes, r.TicketScopes, expr))
	}
	slices.Sort(canon)
	return canon, strings.TrimRight(node.OPHost, "/"), nil
}
