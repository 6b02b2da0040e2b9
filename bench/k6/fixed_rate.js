// Fixed-rate latency: RATE requests/s for DURATION against /authorize (HTTP) or gRPC Check.
// Env: TARGET=http|grpc, URL (http) or ADDR (grpc), EVENT_FILE or TOKEN, RATE, DURATION.
import http from 'k6/http';
import grpc from 'k6/net/grpc';
import { check } from 'k6';

const target = __ENV.TARGET;
const body = target === 'http' ? open(__ENV.EVENT_FILE) : null;
const token = __ENV.TOKEN || '';
const client = target === 'grpc' ? new grpc.Client() : null;

export const options = {
  discardResponseBodies: target === 'http',
  summaryTrendStats: ['med', 'p(99)', 'p(99.9)', 'max'],
  scenarios: {
    fixed: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 1000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: 20,
      maxVUs: 100,
    },
  },
};

export default function () {
  if (target === 'http') {
    const r = http.post(__ENV.URL, body, { headers: { 'Content-Type': 'application/json' } });
    check(r, { 'status 200': (x) => x.status === 200 });
  } else {
    if (__ITER === 0) {
      client.connect(__ENV.ADDR, { plaintext: true, reflect: true });
    }
    const r = client.invoke('envoy.service.auth.v3.Authorization/Check', {
      attributes: { request: { http: { method: 'GET', path: '/items', headers: { cookie: `sAccessToken=${token}` } } } },
    });
    check(r, { 'allowed': (x) => x && x.status === grpc.StatusOK && x.message.okResponse !== undefined });
  }
}
