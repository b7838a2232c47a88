package tests

import (
	"testing"
)

func TestAdminUsers(t *testing.T) {
	scenarios := []Scenario{
		{Name: "admin lists users", Method: "GET", URL: "/admin/users?per_page=5", Headers: auth, Setup: asRole("admin"),
			ExpectedStatus: 200, ExpectedContent: []string{`"total":2`, `"per_page":5`, `"id":"{user_id}"`}, NotExpected: []string{"password"}},
		{Name: "editor cannot list users", Method: "GET", URL: "/admin/users", Headers: auth, Setup: asRole("editor"), ExpectedStatus: 403},
		{Name: "viewer cannot change roles", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("viewer"),
			Body: map[string]string{"role": "admin"}, ExpectedStatus: 403},
		{Name: "admin changes a tier", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "enterprise"}, ExpectedStatus: 200, ExpectedContent: []string{`"tier":"enterprise"`, `"role":"admin"`}},
		{Name: "unknown role is refused", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"role": "root"}, ExpectedStatus: 400, ExpectedContent: []string{`"role":"must be one of: viewer, editor, admin"`}},
		{Name: "empty change is refused", Method: "PATCH", URL: "/admin/users/{user_id}", Headers: auth, Setup: asRole("admin"),
			Body: `{}`, ExpectedStatus: 400},
		{Name: "unknown user is 404", Method: "PATCH", URL: "/admin/users/00000000-0000-4000-8000-000000000000", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "paid"}, ExpectedStatus: 404},
		{Name: "malformed user id is 400", Method: "PATCH", URL: "/admin/users/42", Headers: auth, Setup: asRole("admin"),
			Body: map[string]string{"tier": "paid"}, ExpectedStatus: 400, ExpectedContent: []string{`"code":"invalid_id"`}},
	}
	for _, s := range scenarios {
		s.Run(t)
	}
}
