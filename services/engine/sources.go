package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/engine/alertfsm"
	"github.com/heraldhq/herald/services/internal/domain/payload"
)

// Raw source event types the engine interprets (data types in
// services/internal/domain/payload/sources.go); every other type passes
// through.
const (
	typeVManageAlarm = payload.TypeVManageAlarm
	typeLMCAlert     = payload.TypeLMCAlert
	typeCLCAccount   = payload.TypeCLCAccount
	typeCLCUser      = payload.TypeCLCUser
	typeCLCServer    = payload.TypeCLCServer
	typeCLCAlert     = payload.TypeCLCAlert
	typeOpRequested  = payload.TypeOperationRequest
	typeOpResult     = payload.TypeOperationResultRaw
)

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func strAny(m map[string]any, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// vmanageSignals maps an alarm to one signal keyed by rule and site. Its
// resources are the devices' system-ips.
func vmanageSignals(eventID string, at time.Time, data []byte, keyFields []string) ([]alertfsm.Signal, error) {
	var a payload.VManageAlarm
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode vmanage.alarm: %w", err)
	}
	rule := firstNonEmpty(a.RuleNameDisplay, a.RuleName)
	if rule == "" {
		return nil, fmt.Errorf("vmanage.alarm: no rule_name_display")
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	key := typeVManageAlarm + "/" + rule
	if len(keyFields) == 0 {
		keyFields = []string{"site-id"}
	}
	for _, f := range keyFields {
		v := strAny(fields, f)
		for _, val := range a.Values {
			if v == "" {
				v = val[f]
			}
		}
		if v != "" {
			key += "/" + f + "=" + v
		}
	}
	var res []string
	for _, d := range a.Devices {
		if ip := d["system-ip"]; ip != "" {
			res = append(res, ip)
		}
	}
	if len(res) == 0 {
		for _, v := range a.Values {
			if ip := firstNonEmpty(v["system-ip"], v["host-name"]); ip != "" {
				res = append(res, ip)
			}
		}
	}
	if len(res) == 0 {
		res = []string{rule}
	}
	if a.ReceiveTime > 0 {
		at = time.UnixMilli(a.ReceiveTime).UTC()
	}
	rank := 0
	if a.SeverityNumber > 0 {
		rank = 10 - a.SeverityNumber
	}
	return []alertfsm.Signal{{
		EventID: eventID, Time: at, Key: key, Title: rule, Text: a.Message,
		Resources: res, Active: a.Active, Severity: a.Severity, Rank: rank,
	}}, nil
}

// clcSignals maps an alert-policy event to one signal per trigger metric,
// keyed by account, server and metric.
func clcSignals(eventID string, at time.Time, data []byte) ([]alertfsm.Signal, error) {
	var a payload.CLCAlert
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode clc.alert: %w", err)
	}
	if a.ServerName == "" || len(a.Triggers) == 0 {
		return nil, fmt.Errorf("clc.alert: want serverName and triggers")
	}
	var out []alertfsm.Signal
	for _, tr := range a.Triggers {
		t := at
		if st, err := time.Parse(time.RFC3339, tr.StateStartTime); err == nil {
			t = st
		}
		if et, err := time.Parse(time.RFC3339, tr.StateEndTime); err == nil && tr.State == "notTriggered" {
			t = et
		}
		out = append(out, alertfsm.Signal{
			EventID: eventID, Time: t.UTC(),
			Key:       strings.Join([]string{typeCLCAlert, a.AccountAlias, a.ServerName, tr.Metric}, "/"),
			Title:     fmt.Sprintf("%s alert on %s", tr.Metric, a.ServerName),
			Text:      fmt.Sprintf("%s policy %s on server %s (%s)", tr.Metric, tr.State, a.ServerName, tr.Duration),
			AccountID: a.AccountAlias, Resources: []string{a.ServerName},
			Active: tr.State == "triggered", Severity: "warning", Rank: 1,
		})
	}
	return out, nil
}

// lmcSignals drives the machine straight from the alert's own state.
func lmcSignals(eventID string, at time.Time, data []byte) ([]alertfsm.Signal, error) {
	var a payload.LMCAlert
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decode lmc.alert: %w", err)
	}
	if a.AlertID == "" {
		return nil, fmt.Errorf("lmc.alert: no alertId")
	}
	active := true
	switch strings.ToLower(a.State) {
	case "resolved", "closed", "ok", "inactive", "cleared":
		active = false
	}
	return []alertfsm.Signal{{
		EventID: eventID, Time: at, Key: typeLMCAlert + "/" + a.AlertID, AlertID: a.AlertID,
		Title: a.Title, Text: a.Text, AccountID: a.AccountID, Resources: []string{a.AlertID},
		Active: active, Rank: 1,
	}}, nil
}
