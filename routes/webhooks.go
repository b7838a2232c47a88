package routes

import (
	"github.com/labstack/echo/v5"

	"github.com/tollgate/tollgate/handlers"
)

// Webhook endpoints for auth events: platform operators, with a login.
func webhooks(e *echo.Echo, h *handlers.Webhooks, g Guards) {
	e.GET("/admin/webhooks/events", h.Events, g.PlatformPeople()...)
	e.GET("/admin/webhooks", h.List, g.PlatformPeople()...)
	e.POST("/admin/webhooks", h.Create, g.PlatformPeople()...)
	e.PATCH("/admin/webhooks/:id", h.Update, g.PlatformPeople()...)
	e.DELETE("/admin/webhooks/:id", h.Delete, g.PlatformPeople()...)
	e.POST("/admin/webhooks/:id/rotate-secret", h.Rotate, g.PlatformPeople()...)
	e.GET("/admin/webhooks/:id/messages", h.Messages, g.PlatformPeople()...)
	e.POST("/admin/webhooks/:id/messages/:msg/retry", h.Retry, g.PlatformPeople()...)
}
