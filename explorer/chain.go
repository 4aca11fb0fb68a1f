package explorer

// chainRoutes registers the chain pages (owned by the chain half).
func (e *Explorer) chainRoutes() {}
