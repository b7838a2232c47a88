package services

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/tollgate/tollgate/apperror"
	"github.com/tollgate/tollgate/database/scan"
)

// Page selects a slice of a list: by page number (offset) or, better, after
// a cursor (keyset: as fast on page 1,000 as on page 1, and stable while
// rows are added). Handlers check the bounds.
type Page struct {
	Number  int     // from 1; ignored when After is set
	PerPage int     // 1..MaxPerPage
	After   *Cursor // the next_cursor of the previous page
}

// List bounds.
const (
	MaxPerPage = 100
	// MaxOffset is the deepest row a page number may reach; past it, use the
	// cursor. An offset scan reads and throws away every row before it.
	MaxOffset = 10_000
)

func (p Page) offset() int { return (p.Number - 1) * p.PerPage }

// Cursor is a position in a list ordered by (created_at, id).
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

var errBadCursor = apperror.Validation(map[string]string{"cursor": "is not a cursor this API gave out"})

// String encodes the cursor opaquely (clients must not build their own).
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixNano(), 36) + "." + c.ID.String()))
}

// ParseCursor decodes a cursor from String.
func ParseCursor(s string) (*Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 100 {
		return nil, errBadCursor
	}
	ts, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return nil, errBadCursor
	}
	nanos, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return nil, errBadCursor
	}
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, errBadCursor
	}
	return &Cursor{CreatedAt: time.Unix(0, nanos).UTC(), ID: uid}, nil
}

// PageOf is one page of a list and where the next one starts (nil: last page).
type PageOf[M any] struct {
	Items []M
	Next  *Cursor
}

// listPage reads one page ordered by (created_at, id), newest first when
// desc, in ONE query: it asks for one row more than the page to learn
// whether another page follows, instead of counting the whole table.
func listPage[M any](db *gorm.DB, p Page, desc bool, position func(*M) Cursor) (PageOf[M], error) {
	return listPageOn(db, p, desc, "created_at", "id", position)
}

// listPageOn is listPage over the columns created and id (named with their
// table in a join).
func listPageOn[M any](db *gorm.DB, p Page, desc bool, created, id string, position func(*M) Cursor) (PageOf[M], error) {
	order, cmp := created+", "+id, ">"
	if desc {
		order, cmp = created+" DESC, "+id+" DESC", "<"
	}
	q := db.Order(order).Limit(p.PerPage + 1)
	if p.After != nil {
		// Row-value comparison: PostgreSQL and SQLite (3.15+) both have it,
		// and it walks the (created_at, id) index.
		q = q.Where("("+created+", "+id+") "+cmp+" (?, ?)", p.After.CreatedAt, p.After.ID)
	} else {
		q = q.Offset(p.offset())
	}
	items := make([]M, 0, p.PerPage+1) // sized: GORM's reflective appends would grow it 5 times
	if err := scan.Find(q, &items); err != nil {
		return PageOf[M]{}, err
	}
	out := PageOf[M]{Items: items}
	if len(items) > p.PerPage {
		out.Items = items[:p.PerPage]
		next := position(&out.Items[p.PerPage-1])
		out.Next = &next
	}
	return out, nil
}
