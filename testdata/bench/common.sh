# common.sh: sourced by the bench scripts.
# init_repo DIR: a fresh repository on loopback, no gateway, mDNS or DHT.
init_repo() {
  SHARE_PATH=$1 $BIN init >/dev/null
  SHARE_PATH=$1 $BIN config set Addresses.Listen '["/ip4/127.0.0.1/tcp/0"]'
  SHARE_PATH=$1 $BIN config set Addresses.Gateway '""'
  SHARE_PATH=$1 $BIN config set Discovery.MDNS false
  SHARE_PATH=$1 $BIN config set Routing.Mode off
  SHARE_PATH=$1 $BIN config set Datastore.StorageMax '"100GB"'
}
