package rtsp

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"strings"

	gauth "github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/berthmedia/berth/internal/auth"
)

// HookAuth is an outside authority for the credentials of RTSP players
// (ZLMediaKit's on_rtsp_realm and on_rtsp_auth web hooks). internal/server
// wires the hooks client here; rtsp knows only this interface.
type HookAuth interface {
	// Realm returns the realm a play of r must authenticate in; "" means
	// this play needs no RTSP authentication. An error refuses the play.
	Realm(ctx context.Context, r auth.Request) (string, error)
	// Password returns user's password in realm, or, when encrypted, its
	// MD5(user:realm:password) (Digest's HA1). mustNoEncrypt is true when
	// the client sent Basic, which needs the plain password. An error
	// refuses the play.
	Password(ctx context.Context, r auth.Request, realm, user string, mustNoEncrypt bool) (password string, encrypted bool, err error)
}

// authorize checks credentials for action on path. When they are missing or
// wrong it returns a 401 with Digest (and Basic, if allowed) challenges.
func (c *conn) authorize(req *base.Request, action auth.Action, path string) (response, bool) {
	if action == auth.Play && c.s.HookAuth != nil {
		if r, ok, decided := c.authorizeHook(req, path); decided {
			return r, ok
		}
	}
	if !c.s.Auth.Required(action) {
		return response{}, true
	}
	realm := c.s.Auth.RealmName()
	if realm == "" {
		realm = "berth"
	}
	if _, ok := req.Header["Authorization"]; !ok {
		// The normal first step of every client: not worth more than debug.
		c.log.Debug("credentials required; answered 401 with a challenge", "action", action.String(), "path", path)
		return c.challenge(realm), false
	}
	for _, u := range c.s.Auth.Users(action) {
		if gauth.Verify(req, u.Name, u.Password, c.methods(), realm, c.nonce) == nil {
			c.user = u.Name
			return response{}, true
		}
	}
	c.s.Auth.CountRefusal(action)
	var h headers.Authorization
	_ = h.Unmarshal(req.Header["Authorization"])
	c.log.Warn("authentication failed; answered 401", "action", action.String(), "path", path, "user", h.Username,
		"fix", "check the user and password against the [auth] "+action.String()+" list")
	return c.challenge(realm), false
}

func (c *conn) methods() []gauth.VerifyMethod {
	methods := []gauth.VerifyMethod{gauth.VerifyMethodDigestMD5}
	if c.s.authBasic() {
		methods = append(methods, gauth.VerifyMethodBasic)
	}
	return methods
}

func (c *conn) challenge(realm string) response {
	if c.nonce == "" {
		c.nonce, _ = gauth.GenerateNonce()
	}
	r := status(base.StatusUnauthorized)
	r.Header["WWW-Authenticate"] = gauth.GenerateWWWAuthenticate(c.methods(), realm, c.nonce)
	return r
}

// authorizeHook asks HookAuth for the realm of a play of path (once per
// connection and path) and, when there is one, verifies the client's
// credentials against the password the hook returns. decided is false when
// the hook wants no authentication: the [auth] users then apply.
func (c *conn) authorizeHook(req *base.Request, path string) (r response, ok, decided bool) {
	if c.hookPassed == path && path != "" {
		return response{}, true, true
	}
	ar := c.authRequest(req, auth.Play, path)
	ctx := context.Background()
	if c.hookRealm == nil || c.hookRealm.path != path {
		realm, err := c.s.HookAuth.Realm(ctx, ar)
		if err != nil {
			// ZLMediaKit: a failed on_rtsp_realm call refuses the play.
			c.s.Auth.CountRefusal(auth.Play)
			c.log.Warn("on_rtsp_realm failed; play refused with 401", "path", path, "err", err)
			return c.challenge("unAuthedRealm"), false, true
		}
		c.hookRealm = &hookRealm{path: path, realm: realm}
	}
	realm := c.hookRealm.realm
	if realm == "" {
		return response{}, true, false
	}
	if _, has := req.Header["Authorization"]; !has {
		c.log.Debug("on_rtsp_realm asks for credentials; answered 401 with a challenge", "path", path, "realm", realm)
		return c.challenge(realm), false, true
	}
	var h headers.Authorization
	if err := h.Unmarshal(req.Header["Authorization"]); err != nil {
		c.log.Warn("Authorization header does not parse; answered 401", "path", path, "err", err)
		return c.challenge(realm), false, true
	}
	basic := h.Method == headers.AuthMethodBasic
	pass, encrypted, err := c.s.HookAuth.Password(ctx, ar, realm, h.Username, basic)
	if err != nil {
		c.s.Auth.CountRefusal(auth.Play)
		c.log.Warn("on_rtsp_auth failed; play refused with 401", "path", path, "user", h.Username, "err", err)
		return c.challenge(realm), false, true
	}
	if c.verifyHook(req, &h, realm, pass, encrypted) {
		c.hookPassed, c.user = path, h.Username
		return response{}, true, true
	}
	c.s.Auth.CountRefusal(auth.Play)
	c.log.Warn("authentication against on_rtsp_auth's password failed; answered 401", "path", path, "user", h.Username,
		"realm", realm, "fix", "check the user and password the hook server returns")
	return c.challenge(realm), false, true
}

type hookRealm struct{ path, realm string }

// verifyHook checks credentials against a hook's password, which may be
// Digest's HA1 (encrypted) instead of the password itself.
func (c *conn) verifyHook(req *base.Request, h *headers.Authorization, realm, pass string, encrypted bool) bool {
	if !encrypted {
		return gauth.Verify(req, h.Username, pass, c.methods(), realm, c.nonce) == nil
	}
	// HA1 cannot check Basic (it needs the plain password).
	if h.Method != headers.AuthMethodDigest || h.Realm != realm || h.Nonce != c.nonce ||
		(h.Algorithm != nil && *h.Algorithm != headers.AuthAlgorithmMD5) || !digestURIMatches(req, h.URI) {
		return false
	}
	want := md5Hex(strings.ToLower(pass) + ":" + c.nonce + ":" + md5Hex(string(req.Method)+":"+h.URI))
	return subtle.ConstantTimeCompare([]byte(want), []byte(h.Response)) == 1
}

// digestURIMatches checks the digest's uri names the request (RFC 2617
// 3.2.2: the absolute URL or its path); a SETUP may name the base URL.
func digestURIMatches(req *base.Request, uri string) bool {
	if req.URL == nil {
		return false
	}
	full := req.URL.CloneWithoutCredentials()
	abs, path := full.String(), full.RequestURI()
	if uri == abs || uri == path {
		return true
	}
	return req.Method == base.Setup && uri != "" && (strings.HasPrefix(abs, uri) || strings.HasPrefix(path, uri))
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// gate asks the auth Gate (on_publish / on_play) whether the request may go
// ahead, once per connection, path and action. A refusal answers 403 and
// logs the reason the gate gave.
func (c *conn) gate(req *base.Request, action auth.Action, path string) (response, bool) {
	if c.s.Auth == nil || c.s.Auth.Gate == nil {
		return response{}, true
	}
	key := action.String() + " " + path
	if c.gated == key {
		return response{}, true
	}
	if err := c.s.Auth.Authorize(context.Background(), c.authRequest(req, action, path)); err != nil {
		return c.fail(req, base.StatusForbidden, action.String()+" refused by the web hook; answered 403", "path", path, "reason", err.Error()), false
	}
	c.gated = key
	return response{}, true
}

func (c *conn) authRequest(req *base.Request, action auth.Action, path string) auth.Request {
	app, stream := path, ""
	if i := strings.IndexByte(path, '/'); i >= 0 {
		app, stream = path[:i], path[i+1:]
	}
	return auth.Request{Action: action, Proto: "rtsp", App: app, Stream: stream, Params: queryParams(req),
		Remote: c.remote, ID: c.sess.snapshot().id, User: c.user}
}

// queryParams is the request URL's query without credentials (user, pass).
func queryParams(req *base.Request) string {
	if req.URL == nil {
		return ""
	}
	q, _ := splitControl(req.URL.RawQuery)
	return auth.CleanParams(q)
}
