package services

import "github.com/tollgate/tollgate/apperror"

// The errors several services answer.
var (
	// errAccountGone: a still-valid access token whose user was deleted.
	errAccountGone = apperror.Define(apperror.Unauthenticated, "account_not_found", "The account this token was issued to no longer exists")
)
