/** The relay process of RelayHost: reads "ip port" lines, answers each with the port of a new relay. */
import { createInterface } from 'node:readline';
import { UdpRelay } from './udp-relay.js';

const relays: UdpRelay[] = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const [ip, port] = line.trim().split(' ');
  void UdpRelay.open({ ip: ip!, port: Number(port) }).then((r) => {
    relays.push(r);
    process.stdout.write(`${r.port}\n`);
  });
});
process.stdin.on('end', () => relays.forEach((r) => r.close()));
