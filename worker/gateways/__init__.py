"""Payment gateways: one package per gateway exposing ``GATEWAY`` (``contract.Gateway``), listed
in ``registry``; ``base`` holds the client machinery they share."""
