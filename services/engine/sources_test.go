package engine

import (
	"fmt"
	"testing"
	"time"
)

// The reference samples' shapes (shared/reference 001 and 002).
const vmanageSample = `{"entry_time":1579323422000,"severity":"Critical","rule_name_display":"System_Reboot_Issued",
"severity_number":1,"component":"System","values_short_display":[{"host-name":"DC1-VEDGE1","system-ip":"10.1.0.1"}],
"devices":[{"system-ip":"10.1.0.1"}],"eventname":"system-reboot-issued","receive_time":1579323421121,
"statcycletime":1579323422000,"values":[{"host-name":"DC1-VEDGE1","reboot-reason":"Initiated by user","system-ip":"10.1.0.1"}],
"rulename":"system-reboot-issued","active":true,"message":"The device rebooted","type":"system-reboot-issued",
"acknowledged":false,"uuid":"226bd188-35e8-450f-b40b-b0c5f279f562"}`

const clcSample = `{"accountAlias":"DEMO","serverName":"WA1DEMOSERVER01","triggers":[
{"data":{"cpu":2,"cpuPercent":39.34},"duration":"00:05:00","metric":"cpu","stateEndTime":"2014-06-18T18:23:46Z","stateStartTime":"2014-06-18T18:20:00Z","state":"notTriggered"},
{"duration":"00:05:00","metric":"memory","stateStartTime":"2014-06-18T18:20:00Z","state":"triggered"}]}`

func TestSourceSignals(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v, err := vmanageSignals("e1", now, []byte(vmanageSample), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || v[0].Key != "vmanage.alarm/System_Reboot_Issued" || fmt.Sprint(v[0].Resources) != "[10.1.0.1]" ||
		!v[0].Active || v[0].Rank != 9 || !v[0].Time.Equal(time.UnixMilli(1579323421121)) || v[0].Text != "The device rebooted" {
		t.Errorf("vmanage signal %+v", v)
	}
	site, err := vmanageSignals("e1", now, []byte(`{"rule_name_display":"R","active":false,"devices":[{"system-ip":"1.1.1.1"}],"values":[{"site-id":"100"}]}`), nil)
	if err != nil || site[0].Key != "vmanage.alarm/R/site-id=100" || site[0].Active {
		t.Errorf("site-scoped %+v %v", site, err)
	}
	c, err := clcSignals("e2", now, []byte(clcSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 2 || c[0].Key != "clc.alert/DEMO/WA1DEMOSERVER01/cpu" || c[0].Active ||
		c[1].Key != "clc.alert/DEMO/WA1DEMOSERVER01/memory" || !c[1].Active || c[0].AccountID != "DEMO" {
		t.Errorf("clc signals %+v", c)
	}
	l, err := lmcSignals("e3", now, []byte(`{"alertId":"4f1c","title":"Device offline","text":"AP-1 is not connected","state":"resolved"}`))
	if err != nil || l[0].AlertID != "4f1c" || l[0].Active {
		t.Errorf("lmc signal %+v %v", l, err)
	}
	for _, bad := range []func() error{
		func() error { _, err := vmanageSignals("x", now, []byte(`{"active":true}`), nil); return err },
		func() error { _, err := clcSignals("x", now, []byte(`{"serverName":"s"}`)); return err },
		func() error { _, err := lmcSignals("x", now, []byte(`{"state":"open"}`)); return err },
		func() error { _, err := lmcSignals("x", now, []byte(`[`)); return err },
	} {
		if bad() == nil {
			t.Error("bad input accepted")
		}
	}
}
