package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Batch join limits, as gateway.yaml's orders-with-products route and
// Braid's defaults have them.
const (
	maxBatch      = 100 // product ids per request
	batchInFlight = 4   // product requests at once
)

// order and item are the orders service's schema; Product is filled in.
type order struct {
	ID         int64  `json:"id"`
	UserID     int64  `json:"user_id"`
	Status     string `json:"status"`
	CreatedAt  string `json:"created_at"`
	TotalCents int64  `json:"total_cents"`
	Items      []item `json:"items"`
}

type item struct {
	ProductID      int64           `json:"product_id"`
	Quantity       int             `json:"quantity"`
	UnitPriceCents int64           `json:"unit_price_cents"`
	Product        json.RawMessage `json:"product"`
}

// ordersWithProducts answers GET /api/users/{id}/orders-with-products: the
// user's orders with each line item's product, fetched by distinct id in
// batches of maxBatch, batchInFlight batches at once, under a 3 s deadline.
func (a *aggregator) ordersWithProducts(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "id must be a positive integer")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.batchTimeout)
	defer cancel()
	body, err := a.get(ctx, a.orders+"/users/"+strconv.Itoa(id)+"/orders")
	var orders []order
	if err == nil {
		err = json.Unmarshal(body, &orders)
	}
	if err != nil {
		fail(w, "orders", err)
		return
	}
	var ids []int64
	seen := map[int64]bool{}
	for _, o := range orders {
		for _, it := range o.Items {
			if !seen[it.ProductID] {
				seen[it.ProductID] = true
				ids = append(ids, it.ProductID)
			}
		}
	}
	products, err := a.fetchProducts(ctx, ids)
	if err != nil {
		fail(w, "products", err)
		return
	}
	for _, o := range orders {
		for j := range o.Items {
			o.Items[j].Product = products[o.Items[j].ProductID] // nil is null
		}
	}
	doc, err := json.Marshal(struct {
		Orders []order `json:"orders"`
	}{orders})
	if err != nil {
		fail(w, "products", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	_, _ = w.Write(doc)
}

// fetchProducts fetches the products of ids, by id.
func (a *aggregator) fetchProducts(ctx context.Context, ids []int64) (map[int64]json.RawMessage, error) {
	products := make(map[int64]json.RawMessage, len(ids))
	var (
		mu   sync.Mutex // guards products and errs
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, batchInFlight)
	for start := 0; start < len(ids); start += maxBatch {
		chunk := ids[start:min(start+maxBatch, len(ids))]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			got, err := a.productBatch(ctx, chunk)
			mu.Lock()
			defer mu.Unlock()
			for k, v := range got {
				products[k] = v
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return products, errors.Join(errs...)
}

// productBatch makes one GET /products?ids=… call.
func (a *aggregator) productBatch(ctx context.Context, ids []int64) (map[int64]json.RawMessage, error) {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	body, err := a.get(ctx, a.products+"/products?ids="+strings.Join(s, ","))
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	got := make(map[int64]json.RawMessage, len(raw))
	for _, p := range raw {
		var key struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(p, &key); err != nil {
			return nil, err
		}
		got[key.ID] = p
	}
	return got, nil
}
