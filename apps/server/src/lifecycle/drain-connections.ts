import type { Socket } from 'node:net';

import type { FastifyInstance } from 'fastify';

/**
 * Lets a closing server end the connections it is not answering on. Node's
 * `server.close()` waits for every connection to end but closes only those
 * idle after a response: a connection a client opened and has not sent a
 * request on yet (HTTP clients open spare ones under load), or one that
 * became idle after the close began, would hold the close for its timeout
 * (a minute). So from the moment the close begins, connections with no
 * request in flight are ended, and each one is ended as its last response
 * finishes; responses sent while closing also say `Connection: close`.
 */
export function drainConnectionsOnClose(app: FastifyInstance, closing: () => boolean): void {
  const sockets = new Set<Socket>();
  const inFlight = new Map<Socket, number>();
  const endIdle = () => {
    for (const socket of sockets) if (!inFlight.has(socket)) socket.destroy();
  };
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      inFlight.delete(socket);
    });
  });
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    reply.raw.once('close', () => {
      const left = (inFlight.get(socket) ?? 1) - 1;
      if (left > 0) inFlight.set(socket, left);
      else inFlight.delete(socket);
      if (closing()) setImmediate(endIdle);
    });
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing()) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('preClose', (done) => {
    endIdle();
    done();
  });
}
