package payload

// Resource-change notification kinds: <kind>.<action>, e.g. server.deleted.
const (
	ResourceAccount = "account"
	ResourceUser    = "user"
	ResourceServer  = "server"

	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)

// ResourceIdentity is the whole data of a *.deleted notification: a deleted
// resource carries only who it was. Created and updated notifications carry
// the source's full payload, links included, unchanged.
type ResourceIdentity struct {
	Kind         string `json:"kind"` // account | user | server
	ID           string `json:"id"`
	AccountAlias string `json:"accountAlias,omitempty"`
	Links        []Link `json:"links,omitempty"`
}

// Link is a resource link in the cloud provider's style.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}
