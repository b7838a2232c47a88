package services

// Page selects a slice of a list. Handlers check the bounds.
type Page struct {
	Number  int // from 1
	PerPage int // 1..MaxPerPage
}

// MaxPerPage caps every list endpoint.
const MaxPerPage = 100

func (p Page) offset() int { return (p.Number - 1) * p.PerPage }
