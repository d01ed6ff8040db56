package demo

import (
	"fmt"
	"net/http"
)

// handler answers one API request with a value to encode as JSON or an
// error that respond maps to a status.
type handler func(r *http.Request) (any, error)

// Limits of the list parameters.
const (
	maxOrdersLimit          = 100
	defaultRecommendations  = 10
	maxRecommendationsLimit = 50
	maxBatchIDs             = 500
)

// routesFor returns the API routes of the named service.
func routesFor(name string, st Store) ([]route, error) {
	switch name {
	case "users":
		return []route{{"GET /users/{id}", getUser(st)}}, nil
	case "orders":
		return []route{{"GET /users/{id}/orders", listOrders(st)}, {"GET /orders/{id}", getOrder(st)}}, nil
	case "products":
		return []route{{"GET /products", batchProducts(st)}, {"GET /products/{id}", getProduct(st)}}, nil
	case "notifications":
		return []route{{"GET /users/{id}/notifications", listNotifications(st)}}, nil
	case "recommendations":
		return []route{{"GET /users/{id}/recommendations", listRecommendations(st)}}, nil
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("demo: no routes for service %q", name)
}

func getUser(st UserStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "user")
		if err != nil {
			return nil, err
		}
		return st.User(r.Context(), id)
	}
}

func listOrders(st OrderStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "user")
		if err != nil {
			return nil, err
		}
		limit, err := queryLimit(r, 0, maxOrdersLimit)
		if err != nil {
			return nil, err
		}
		orders, err := st.UserOrders(r.Context(), id, limit)
		return nonNil(orders), err
	}
}

func getOrder(st OrderStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "order")
		if err != nil {
			return nil, err
		}
		return st.Order(r.Context(), id)
	}
}

func getProduct(st ProductStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "product")
		if err != nil {
			return nil, err
		}
		return st.Product(r.Context(), id)
	}
}

func batchProducts(st ProductStore) handler {
	return func(r *http.Request) (any, error) {
		ids, err := queryIDs(r, maxBatchIDs)
		if err != nil {
			return nil, err
		}
		products, err := st.Products(r.Context(), ids)
		return nonNil(products), err
	}
}

func listNotifications(st NotificationStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "user")
		if err != nil {
			return nil, err
		}
		unread, err := queryBool(r, "unread")
		if err != nil {
			return nil, err
		}
		notes, err := st.Notifications(r.Context(), id, unread)
		return nonNil(notes), err
	}
}

func listRecommendations(st RecommendationStore) handler {
	return func(r *http.Request) (any, error) {
		id, err := pathID(r, "user")
		if err != nil {
			return nil, err
		}
		limit, err := queryLimit(r, defaultRecommendations, maxRecommendationsLimit)
		if err != nil {
			return nil, err
		}
		recs, err := st.Recommendations(r.Context(), id, limit)
		return nonNil(recs), err
	}
}

// health is the body of GET /healthz.
type health struct {
	Status  string `json:"status"`
	Service string `json:"service"`
}

func (s *Service) healthz(*http.Request) (any, error) {
	return health{Status: "ok", Service: s.name}, nil
}

// noRoute answers requests that match no route.
func noRoute(r *http.Request) (any, error) {
	return nil, &statusError{http.StatusNotFound, "no route for " + r.Method + " " + r.URL.Path}
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
