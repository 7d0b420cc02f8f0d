#!/usr/bin/env bash
# A private one-node Ceph (pacific 16.2, Debian): 1 mon + 1 memstore OSD + 1 radosgw (S3 on
# 127.0.0.1:$RGW_PORT), no mgr, no systemd, everything under $CEPH_DIR. Stopped by PID files.
# The port is free when chosen, but other tests start servers meanwhile: radosgw counts as up
# only when the port answers as S3 does; if another server took it, radosgw is started again
# on another port. The last line of output is the port it listens on (RGW_PORT=<n>).
# Needs: ceph-mon ceph-osd radosgw ceph-common (installed by the test harness).
set -euo pipefail
D=$CEPH_DIR
# On failure, show why: the daemons' logs.
trap 'echo "ceph-up.sh failed at line $LINENO" >&2; tail -n 15 "$D"/log/*.log >&2 2>/dev/null' ERR
mkdir -p "$D"/{mon/ceph-a,osd/ceph-0,rgw,run,log}
FSID=$(cat /proc/sys/kernel/random/uuid)
export CEPH_CONF="$D/ceph.conf"
cat > "$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
public_addr = 127.0.0.1
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_allow_insecure_global_id_reclaim = true
# With auth=none the mon connection must not require 'secure' mode (radosgw would loop on EACCES).
ms_mon_client_mode = crc secure
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_data_avail_warn = 1
# Test clusters run on shared, fairly full disks: never stop the mon for lack of space.
mon_data_avail_crit = 0
keyring = $D/keyring
run_dir = $D/run
admin_socket = $D/run/\$cluster-\$name.asok
log_file = $D/log/\$cluster-\$name.log
pid_file = $D/run/\$cluster-\$name.pid
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
[mon]
mon_data = $D/mon/\$cluster-\$id
mon_allow_pool_delete = true
[osd]
osd_data = $D/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_memory_target = 939524096
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
[client.rgw.berth]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_data = $D/rgw
rgw_dns_name = localhost
rgw_thread_pool_size = 64
CONF
# mkfs needs a keyring even with auth=none.
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -i a
timeout 30 bash -c 'until ceph -s >/dev/null 2>&1; do sleep 0.2; done'
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph osd new "$OSD_UUID")
ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" > "$D/log/osd-mkfs.log" 2>&1 || { tail -20 "$D/log/osd-mkfs.log"; exit 1; }
ceph-osd -i "$OSD_ID" 2>/dev/null
timeout 60 bash -c 'until ceph osd stat 2>/dev/null | grep -q "1 up"; do sleep 0.5; done'
rgw_up() {
  timeout 45 bash -c "until curl -s http://127.0.0.1:$1/ | grep -q ListAllMyBucketsResult; do sleep 0.5; done"
}
for attempt in 1 2 3 4; do
  radosgw -n client.rgw.berth --rgw_frontends "beast endpoint=127.0.0.1:$RGW_PORT"
  if rgw_up "$RGW_PORT"; then break; fi
  echo "radosgw did not answer as S3 on port $RGW_PORT (taken by another server?); attempt $attempt" >&2
  pid=$(cat "$D/run/ceph-client.rgw.berth.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  [ "$attempt" = 4 ] && exit 1
  RGW_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
done
radosgw-admin user create --uid=berth --display-name=berth --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null
echo "RGW_PORT=$RGW_PORT"
