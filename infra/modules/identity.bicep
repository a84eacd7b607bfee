// The one user-assigned identity the app uses for everything: host storage, the app's state, the deployment
// package, Key Vault references and Application Insights ingestion.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
