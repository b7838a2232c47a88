package openapi

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// captchaPaths are the flows CAPTCHA_FLOWS can guard.
var captchaPaths = []string{"/auth/register", "/auth/login", "/auth/password/forgot", "/auth/verify/resend", "/oauth/token"}

// addCaptcha documents the CAPTCHA answer header and its refusals on the
// flows it can guard (services/captcha.go).
func addCaptcha(doc *openapi3.T) {
	for _, path := range captchaPaths {
		item := doc.Paths.Value(path)
		if item == nil || item.Post == nil {
			continue
		}
		op := item.Post
		if op.Parameters.GetByInAndName("header", "X-Captcha-Token") == nil {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewHeaderParameter("X-Captcha-Token").
				WithDescription("a solved CAPTCHA's answer, when GET /auth/captcha says this flow needs one").
				WithSchema(openapi3.NewStringSchema())})
		}
		mention(doc, op, "400", "captcha_required or captcha_invalid (CAPTCHA_FLOWS)")
		mention(doc, op, "503", "captcha_unavailable: the CAPTCHA provider did not answer (see Retry-After)")
	}
}
