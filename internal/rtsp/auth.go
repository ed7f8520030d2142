package rtsp

import (
	gauth "github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/berthmedia/berth/internal/auth"
)

// authorize checks credentials for action on path. When they are missing or
// wrong it returns a 401 with Digest (and Basic, if allowed) challenges.
func (c *conn) authorize(req *base.Request, action auth.Action, path string) (response, bool) {
	if !c.s.Auth.Required(action) {
		return response{}, true
	}
	if c.nonce == "" {
		c.nonce, _ = gauth.GenerateNonce()
	}
	methods := []gauth.VerifyMethod{gauth.VerifyMethodDigestMD5}
	if c.s.authBasic() {
		methods = append(methods, gauth.VerifyMethodBasic)
	}
	realm := c.s.Auth.RealmName()
	if realm == "" {
		realm = "berth"
	}
	challenge := func() response {
		r := status(base.StatusUnauthorized)
		r.Header["WWW-Authenticate"] = gauth.GenerateWWWAuthenticate(methods, realm, c.nonce)
		return r
	}
	if _, ok := req.Header["Authorization"]; !ok {
		// The normal first step of every client: not worth more than debug.
		c.log.Debug("credentials required; answered 401 with a challenge", "action", action.String(), "path", path)
		return challenge(), false
	}
	for _, u := range c.s.Auth.Users(action) {
		if gauth.Verify(req, u.Name, u.Password, methods, realm, c.nonce) == nil {
			return response{}, true
		}
	}
	var h headers.Authorization
	_ = h.Unmarshal(req.Header["Authorization"])
	c.log.Warn("authentication failed; answered 401", "action", action.String(), "path", path, "user", h.Username,
		"fix", "check the user and password against the [auth] "+action.String()+" list")
	return challenge(), false
}
