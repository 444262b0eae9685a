package payload

import "encoding/json"

// Raw source event types, written by the collector's source adapters to
// EVENTS. Their data shapes are the sources' own payloads, unchanged, so that
// nothing a source sent is lost; the structs below name the fields Herald
// relies on.
const (
	TypeVManageAlarm       = "vmanage.alarm"
	TypeLMCAlert           = "lmc.alert"
	TypeCLCAccount         = "clc.account"
	TypeCLCUser            = "clc.user"
	TypeCLCServer          = "clc.server"
	TypeCLCAlert           = "clc.alert"
	TypeOperationRequest   = "device.operation.requested"
	TypeOperationResultRaw = "device.operation.result"
)

// ExtensionAction is the CloudEvent extension that carries the change kind
// (created|updated|deleted) of clc.account, clc.user and clc.server events.
const ExtensionAction = "action"

// VManageAlarm is a Cisco vManage alarm webhook. ReceiveTime and EntryTime
// are epoch milliseconds. Active false means the alarm cleared.
type VManageAlarm struct {
	UUID               string              `json:"uuid"`
	RuleNameDisplay    string              `json:"rule_name_display"`
	RuleName           string              `json:"rulename,omitempty"`
	EventName          string              `json:"eventname,omitempty"`
	Type               string              `json:"type,omitempty"`
	Component          string              `json:"component,omitempty"`
	Message            string              `json:"message,omitempty"`
	Severity           string              `json:"severity"`
	SeverityNumber     int                 `json:"severity_number,omitempty"`
	Active             bool                `json:"active"`
	Acknowledged       bool                `json:"acknowledged,omitempty"`
	Devices            []map[string]string `json:"devices"`
	Values             []map[string]string `json:"values"`
	ValuesShortDisplay []map[string]string `json:"values_short_display"`
	ReceiveTime        int64               `json:"receive_time"`
	EntryTime          int64               `json:"entry_time,omitempty"`
	StatCycleTime      int64               `json:"statcycletime,omitempty"`
}

// LMCAlert is a management-cloud alert notification. Times are as the
// source formats them (RFC 3339 in practice).
type LMCAlert struct {
	AlertID        string `json:"alertId"`
	ProjectID      string `json:"projectId"`
	AccountID      string `json:"accountId"`
	Title          string `json:"title"`
	Text           string `json:"text"`
	CreatedAt      string `json:"createdAt"`
	StateUpdatedAt string `json:"stateUpdatedAt"`
	State          string `json:"state"`
}

// CLCLink is a link of the cloud provider's resources.
type CLCLink struct {
	Rel   string   `json:"rel"`
	Href  string   `json:"href"`
	ID    string   `json:"id,omitempty"`
	Verbs []string `json:"verbs,omitempty"`
}

// CLCAccount is the cloud provider's account event.
type CLCAccount struct {
	AccountAlias      string    `json:"accountAlias"`
	BusinessName      string    `json:"businessName,omitempty"`
	ParentAlias       string    `json:"parentAlias,omitempty"`
	PrimaryDataCenter string    `json:"primaryDataCenter,omitempty"`
	Status            string    `json:"status,omitempty"`
	IsManaged         bool      `json:"isManaged,omitempty"`
	AddressLine1      string    `json:"addressLine1,omitempty"`
	AddressLine2      string    `json:"addressLine2,omitempty"`
	City              string    `json:"city,omitempty"`
	StateProvince     string    `json:"stateProvince,omitempty"`
	Country           string    `json:"country,omitempty"`
	PostalCode        string    `json:"postalCode,omitempty"`
	Telephone         string    `json:"telephone,omitempty"`
	Links             []CLCLink `json:"links,omitempty"`
}

// CLCUser is the cloud provider's user event.
type CLCUser struct {
	URI          string `json:"uri,omitempty"`
	AccountURI   string `json:"accountUri,omitempty"`
	AccountAlias string `json:"accountAlias"`
	UserName     string `json:"userName"`
	EmailAddress string `json:"emailAddress,omitempty"`
	FirstName    string `json:"firstName,omitempty"`
	LastName     string `json:"lastName,omitempty"`
	Status       string `json:"status,omitempty"`
}

// CLCServer is the cloud provider's server event. A delete carries only
// AccountAlias and Name; everything else is then empty. Details are kept raw.
type CLCServer struct {
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name"`
	AccountAlias string          `json:"accountAlias,omitempty"`
	Description  string          `json:"description,omitempty"`
	GroupID      string          `json:"groupId,omitempty"`
	LocationID   string          `json:"locationId,omitempty"`
	OSType       string          `json:"osType,omitempty"`
	Status       string          `json:"status,omitempty"`
	Type         string          `json:"type,omitempty"`
	StorageType  string          `json:"storageType,omitempty"`
	Details      json.RawMessage `json:"details,omitempty"`
	ChangeInfo   *CLCChangeInfo  `json:"changeInfo,omitempty"`
	Links        []CLCLink       `json:"links,omitempty"`
}

// CLCChangeInfo says who changed a server and when (RFC 3339).
type CLCChangeInfo struct {
	CreatedBy    string `json:"createdBy,omitempty"`
	CreatedDate  string `json:"createdDate,omitempty"`
	ModifiedBy   string `json:"modifiedBy,omitempty"`
	ModifiedDate string `json:"modifiedDate,omitempty"`
}

// CLCAlert is an alert-policy event: one trigger per metric.
type CLCAlert struct {
	AccountAlias string       `json:"accountAlias"`
	ServerName   string       `json:"serverName"`
	Triggers     []CLCTrigger `json:"triggers"`
}

// CLCTrigger states are "triggered" and "notTriggered".
type CLCTrigger struct {
	Data           map[string]float64 `json:"data,omitempty"`
	Duration       string             `json:"duration,omitempty"`
	Metric         string             `json:"metric"`
	StateStartTime string             `json:"stateStartTime,omitempty"`
	StateEndTime   string             `json:"stateEndTime,omitempty"`
	State          string             `json:"state"`
}

// DeviceOperationRequest is an asynchronous device action that was asked
// for. The source spells the protocol UUID "protocolo" (Portuguese) or
// "protocol"; the collector keeps the payload as sent, so use ProtocolID.
type DeviceOperationRequest struct {
	Protocol  string `json:"protocol,omitempty"`
	Protocolo string `json:"protocolo,omitempty"`
	RouterID  string `json:"router_id"`
	Operation string `json:"operation"` // e.g. reboot, parameters.update
	// Timeout optionally overrides the operation's deadline (Go duration).
	Timeout   string `json:"timeout,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
}

// ProtocolID is the request's protocol UUID, whichever way it was spelled.
func (r DeviceOperationRequest) ProtocolID() string { return firstOf(r.Protocol, r.Protocolo) }

// DeviceOperationResult is the source's result webhook, e.g.
// {"protocolo": "<uuid>", "router_id": "RTR-42", "status": "success",
// "timestamp": "10:07:00"}.
type DeviceOperationResult struct {
	Protocol  string `json:"protocol,omitempty"`
	Protocolo string `json:"protocolo,omitempty"`
	RouterID  string `json:"router_id"`
	Status    string `json:"status"` // success | failure | error | timeout
	Timestamp string `json:"timestamp,omitempty"`
}

// ProtocolID is the result's protocol UUID, whichever way it was spelled.
func (r DeviceOperationResult) ProtocolID() string { return firstOf(r.Protocol, r.Protocolo) }

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
