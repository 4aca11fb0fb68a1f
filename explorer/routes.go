package explorer

// routes registers every page. The chain half (home, blocks, transactions,
// accounts, chain validators, search) is in chain.go; the subnet half
// (subnets, metagraphs, miners and validators, channels) in subnet.go; the
// models and datasets in royalty.go.
func (e *Explorer) routes() {
	e.chainRoutes()
	e.subnetRoutes()
	e.royaltyRoutes()
}
