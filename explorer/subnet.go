package explorer

// subnetRoutes registers the subnet pages (owned by the subnet half).
func (e *Explorer) subnetRoutes() {}
