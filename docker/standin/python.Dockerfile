# A stand-in for python:3.11-slim, built by docker/smoke only where no container registry
# can be reached: Debian bookworm's own Python 3.11, with venv and pip, from Debian's mirror.
# Enough for docker/Dockerfile (python3 -m venv); the image labels itself as a stand-in.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3.11=3.11.* python3.11-venv=3.11.* python3-pip=23.* python-is-python3=3.11.* \
        ca-certificates=* tzdata=* \
    && rm -rf /var/lib/apt/lists/*
# The certificates the building machine trusts beyond Debian's (a TLS-inspecting proxy in
# front of PyPI, say): docker/smoke puts them in extra-ca/, empty where there are none.
# pip then trusts the system's bundle, as pip on that machine does.
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates \
    && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >/etc/pip.conf
ENV LANG=C.UTF-8
LABEL org.swanwatch.stand-in="python:3.11-slim built from Debian bookworm packages by docker/smoke"
CMD ["python3"]
