/** The OpenAPI 3.1 description of the HTTP API, served at /openapi.json. */
export function openApiDocument(publicUrl: string): object {
  return {
    openapi: '3.1.0',
    info: { title: 'Tessera', version: '0.1.0' },
    servers: [{ url: publicUrl }],
    paths: {},
  };
}
