package docs

// Regenerate everything in docs/ from the annotations: go generate ./docs
// (.ci/run does, and fails when the result differs from what is committed).
//go:generate go tool swag init --quiet --useStructName --requiredByDefault --dir .. --generalInfo routes/api.go --output . --outputTypes json,yaml
//go:generate go run .. docs .
