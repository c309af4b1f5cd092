// Mail to partners and approvers: an Azure Communication Services resource, an Email
// Communication Service with an Azure-managed domain (DoNotReply@<guid>.azurecomm.net, no
// DNS to set up), and the link between them. The app sends with its managed identity
// (src/mail), so no access key is read or set anywhere; role-assignments.bicep grants the
// identity its role on the Communication Services resource.
//
// - https://learn.microsoft.com/azure/communication-services/quickstarts/email/add-azure-managed-domains
// - https://learn.microsoft.com/azure/communication-services/quickstarts/email/connect-email-communication-resource

@description('Name of the Communication Services resource (globally unique).')
param name string

@description('Where the resources keep their data at rest: a data location such as Europe or United States (both resources must use the same one to be linked).')
param dataLocation string

param tags object = {}

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: take('${name}-email', 63)
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

// Engagement tracking off: no tracking pixel or rewritten link in mail about someone's access.
resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communication 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

output name string = communication.name
// SIGNUP_MAIL_ENDPOINT and SIGNUP_MAIL_SENDER.
output endpoint string = 'https://${communication.properties.hostName}'
output sender string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
