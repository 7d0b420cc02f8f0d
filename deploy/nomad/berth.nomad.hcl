# Berth on Nomad: three identical tasks sharing MySQL/MariaDB and a host volume on a shared
# filesystem (CephFS, NFS) for blobs (for S3 instead, drop the volume and set
# BERTH_STORAGE_DRIVER=s3, BERTH_S3_ENDPOINT, BERTH_S3_BUCKET and the AWS_* credentials), registered in Consul with an HTTP check on /readyz, so
# that load balancers reading Consul (Fabio, Traefik, HAProxy with consul-template) send
# traffic only to ready nodes. Secrets come from Nomad variables (nomad/jobs/berth).
job "berth" {
  datacenters = ["dc1"]
  type        = "service"

  update {
    max_parallel     = 1
    health_check     = "checks"
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "registry" {
    count = 3

    spread {
      attribute = "${node.unique.id}"
    }

    network {
      port "http" {
        to = 5000
      }
    }

    volume "blobs" {
      type      = "host"
      source    = "berth-blobs"
      read_only = false
    }

    service {
      name         = "berth"
      port         = "http"
      # The address clients and balancers must use: the host's, with the mapped port.
      address_mode = "host"
      tags         = ["registry", "urlprefix-/"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "5s"
        timeout  = "2s"
      }
    }

    task "berth" {
      driver       = "docker"
      kill_timeout = "60s"

      config {
        image = "berth:latest"
        ports = ["http"]
        args  = ["serve"]
      }

      volume_mount {
        volume      = "blobs"
        destination = "/var/lib/berth/storage"
      }

      template {
        destination = "secrets/berth.env"
        env         = true
        data        = <<EOT
{{ with nomadVar "nomad/jobs/berth" }}
BERTH_DATABASE_URL={{ .database_url }}
BERTH_ADMIN_PASSWORD={{ .admin_password }}
BERTH_REDIS_URL={{ .redis_url }}
{{ end }}
EOT
      }

      env {
        BERTH_LISTEN          = "0.0.0.0:5000"
        BERTH_EXTERNAL_URL    = "https://registry.example.com"
        BERTH_TRUSTED_PROXIES = "10.0.0.0/8"
        BERTH_LOG_FORMAT      = "json"
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
