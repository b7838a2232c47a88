package tests

import "testing"

func TestUsersMe(t *testing.T) {
	parallelTest(t)
	scenarios := []Scenario{
		{Name: "returns the caller", Method: "GET", URL: "/users/me", Headers: auth, Setup: asRole("editor"),
			ExpectedStatus: 200, ExpectedContent: []string{`"id":"{user_id}"`, `"role":"editor"`, `"email_verified":true`},
			NotExpected: []string{"password", "hash"}},
		{Name: "needs a token", Method: "GET", URL: "/users/me", ExpectedStatus: 401,
			ExpectedContent: []string{`"code":"authentication_required"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
